<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Container\Container;
use Keyward\CreatedKey;
use Keyward\KeyRecord;
use Keyward\Store;
use Keyward\Verdict;

/**
 * API keys for a model (an Eloquent user, a team...), like Sanctum's HasApiTokens:
 *
 *     $created = $user->createKey('deploy bot', ['invoices:read']);
 *     return $created->key;            // the key text: shown this once, stored nowhere
 *
 * The key's owner is keywardOwner(): the model's key ((string) $this->getKey()) unless the
 * model overrides it (e.g. "team:7" when several models own keys; the guard's user hook then
 * maps it back). Keys live in the keyward store (the container's Keyward\Store), not in a
 * database table. On the request's user, currentApiKey() is the verdict of the key used and
 * keyCan() / tokenCan() check its scopes.
 */
trait HasApiKeys
{
    private ?Verdict $keywardVerdict = null;

    /** @var ?\Closure(): list<string> */
    private ?\Closure $keywardScopes = null;

    /** The key owner this model stands for (default: its primary key). */
    public function keywardOwner(): string
    {
        return (string) $this->getKey();
    }

    /** The store keys are created in: the container's Keyward\Store. */
    public function keywardStore(): Store
    {
        return Container::getInstance()->make(Store::class);
    }

    /**
     * Creates a key for this model. The key text is in the result's ->key, once.
     *
     * @param list<string> $scopes scopes (Sanctum's abilities; no '*' wildcard: list them)
     * @param array<string, mixed> $options more Store::create() arguments (env:, expiresAt:, credits:, metadata:)
     */
    public function createKey(string $name, array $scopes = [], array $options = []): CreatedKey
    {
        return $this->keywardStore()->create($this->keywardOwner(), $name, array_values($scopes), ...$options);
    }

    /**
     * This model's keys (records, never the key text).
     *
     * @return list<KeyRecord>
     */
    public function apiKeys(int $state = Store::STATE_ALL): array
    {
        return iterator_to_array($this->keywardStore()->listAll($this->keywardOwner(), $state), false);
    }

    /** The verdict of the key the current request was authenticated with (null outside one). */
    public function currentApiKey(): ?Verdict
    {
        return $this->keywardVerdict;
    }

    /**
     * Called by the keyward guard with the request's verdict and its scopes (read lazily).
     *
     * @param ?\Closure(): list<string> $scopes
     */
    public function withApiKey(Verdict $verdict, ?\Closure $scopes = null): static
    {
        $this->keywardVerdict = $verdict;
        $this->keywardScopes = $scopes;
        return $this;
    }

    /** Whether the request's key has this scope (false when the request used no key). */
    public function keyCan(string $scope): bool
    {
        if ($this->keywardVerdict === null || !$this->keywardVerdict->valid) {
            return false;
        }
        if ($this->keywardScopes === null) {
            $verdict = $this->keywardVerdict;
            $store = $this->keywardStore();
            $this->keywardScopes = static fn (): array => ($verdict->record ?? $store->get((string) $verdict->keyId()))->scopes;
        }
        return in_array($scope, ($this->keywardScopes)(), true);
    }

    /** Sanctum's name for keyCan(). */
    public function tokenCan(string $ability): bool
    {
        return $this->keyCan($ability);
    }

    /** Sanctum's tokenCant(). */
    public function tokenCant(string $ability): bool
    {
        return !$this->keyCan($ability);
    }
}
