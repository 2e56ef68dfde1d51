<?php
return 'engine';
