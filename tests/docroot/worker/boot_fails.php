<?php
// A worker script whose boot always fails: it never asks for a request.
throw new LogicException('the app cannot boot');
