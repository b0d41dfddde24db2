<?php // config/auth.php (the guards part; 'providers' stays as it is)

return [
    'defaults' => ['guard' => 'web', 'passwords' => 'users'],
    'guards' => [
        'web' => ['driver' => 'session', 'provider' => 'users'],
        // was: 'sanctum' (added by Sanctum's provider); the key's owner is the user's id:
        'keyward' => ['driver' => 'keyward', 'provider' => 'users'],
    ],
    'providers' => [
        'users' => ['driver' => 'eloquent', 'model' => App\Models\User::class],
    ],
];
