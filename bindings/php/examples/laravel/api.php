<?php // routes/api.php

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Route;

// Issue a key (here from a console command or an admin page): the text is shown this once.
Route::post('/keys', function (Request $request) {
    $created = $request->user()->createKey('deploy bot', ['invoices:read']);
    return ['key' => $created->key, 'id' => $created->id()];
})->middleware(['auth:keyward', 'abilities:keys:create']);

// Every ability listed (Sanctum's abilities:)...
Route::get('/invoices', function (Request $request) {
    return ['user' => $request->user()->id, 'key' => $request->user()->currentApiKey()->keyId()];
})->middleware(['auth:keyward', 'abilities:invoices:read']);

// ...or any one of them (Sanctum's ability:).
Route::post('/invoices', function (Request $request) {
    return ['can_admin' => $request->user()->tokenCan('admin')];
})->middleware(['auth:keyward', 'ability:invoices:write,admin']);
