<?php // app/Models/User.php

namespace App\Models;

use Illuminate\Foundation\Auth\User as Authenticatable;
use Keyward\Laravel\HasApiKeys;

class User extends Authenticatable
{
    use HasApiKeys; // was: use Laravel\Sanctum\HasApiTokens;
}
