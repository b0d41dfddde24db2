<?php // php examples/quickstart.php keys.redb   (KEYWARD_LIB=/path/to/libkeyward.so.1 if not installed)
require __DIR__ . '/../vendor/autoload.php';
$store = Keyward\Store::open($argv[1] ?? 'keys.redb');
$created = $store->create('acct_42', scopes: ['invoices:read'], env: 'live'); // $created->key: shown once
$verdict = $store->verifyHeaders(['Authorization' => "Bearer $created->key"], ['invoices:read']);
echo $verdict->valid ? "hello {$verdict->owner()}\n" : "$verdict->httpStatus $verdict->code\n";
