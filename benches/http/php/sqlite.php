<?php
// SQLite + SHA-256 lookup (lookup.php).
require __DIR__ . '/lookup.php';
sanctum_endpoint(false);
