<?php
// No authentication: the floor every other variant is compared with.
header('Content-Type: application/json');
echo '{"ok":true}';
