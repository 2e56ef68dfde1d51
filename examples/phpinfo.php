<?php
// Everything about the running engine. Fine for a local demo; never expose it on a real site.
phpinfo();
