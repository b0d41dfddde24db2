<?php
// Lookup + UPDATE last_used_at, uses: Sanctum's default (lookup.php).
require __DIR__ . '/lookup.php';
sanctum_endpoint(true);
