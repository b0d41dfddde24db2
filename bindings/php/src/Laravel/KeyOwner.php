<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Contracts\Auth\Authenticatable;
use Keyward\Verdict;

/**
 * The user of a keyward request when the application maps owners to no user model (no hook,
 * no user provider): the key's owner itself, e.g. a service account or a tenant id.
 * $request->user()->getAuthIdentifier() is the owner; keyCan() / tokenCan() check scopes.
 */
final class KeyOwner implements Authenticatable
{
    use HasApiKeys;

    public function __construct(public readonly string $owner, ?Verdict $verdict = null)
    {
        if ($verdict !== null) {
            $this->keywardVerdict = $verdict;
        }
    }

    public function keywardOwner(): string
    {
        return $this->owner;
    }

    public function getAuthIdentifierName()
    {
        return 'owner';
    }

    public function getAuthIdentifier()
    {
        return $this->owner;
    }

    public function getAuthPassword()
    {
        return '';
    }

    public function getRememberToken()
    {
        return null;
    }

    public function setRememberToken($value): void
    {
    }

    public function getRememberTokenName()
    {
        return '';
    }
}
