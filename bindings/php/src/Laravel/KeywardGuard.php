<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Contracts\Auth\Authenticatable;
use Illuminate\Contracts\Auth\Guard as GuardContract;
use Illuminate\Contracts\Auth\UserProvider;
use Illuminate\Http\Request;
use Keyward\Exception\NotFoundException;
use Keyward\Guard;
use Keyward\Middleware;
use Keyward\Store;
use Keyward\Verdict;

/**
 * The `keyward` auth driver (Illuminate\Contracts\Auth\Guard): the request's API key, verified
 * once per request, is the credential; its owner is turned into the user by the application's
 * hook: resolveUsersUsing(fn (string $owner, Verdict $verdict) => ...), else the guard's user
 * provider (`'provider' => 'users'`: retrieveById($owner)), else a KeyOwner standing for the
 * owner itself.
 *
 * The verdict is left on the request (attribute "keyward.verdict", as Keyward\Middleware does,
 * and Guard::ACCEPTED for the checks after it), so CheckAbilities / CheckForAnyAbility and
 * other keyward checks in the same request reuse it: one use counted, credits spent once.
 */
class KeywardGuard implements GuardContract
{
    /** @var ?\Closure(string, Verdict): ?Authenticatable */
    private static ?\Closure $resolveUsers = null;

    private ?Authenticatable $user = null;
    private ?Verdict $verdict = null;
    private ?Verdict $refusal = null;
    private bool $resolved = false;

    /**
     * @param Store|\Closure(): Store $store the store, or a closure returning it (per request)
     */
    public function __construct(
        private Store|\Closure $store,
        private ?Request $request = null,
        private ?UserProvider $provider = null,
    ) {
    }

    /**
     * The application's owner → user hook for every keyward guard: a callable receiving the
     * key's owner and its Verdict and returning the user (Authenticatable), or null to refuse
     * the request (401 OWNER_NOT_FOUND). Null removes the hook.
     *
     * @param ?callable(string, Verdict): ?Authenticatable $resolver
     */
    public static function resolveUsersUsing(?callable $resolver): void
    {
        self::$resolveUsers = $resolver === null ? null : \Closure::fromCallable($resolver);
    }

    /** The guard for another request (the service provider calls it when the request is rebound). */
    public function setRequest(Request $request): static
    {
        if ($request !== $this->request) {
            $this->request = $request;
            $this->forgetUser();
        }
        return $this;
    }

    public function getRequest(): ?Request
    {
        return $this->request;
    }

    public function store(): Store
    {
        return $this->store instanceof Store ? $this->store : ($this->store)();
    }

    public function check(): bool
    {
        return $this->user() !== null;
    }

    public function guest(): bool
    {
        return !$this->check();
    }

    public function hasUser(): bool
    {
        return $this->user !== null;
    }

    /** @return int|string|null */
    public function id()
    {
        return $this->user()?->getAuthIdentifier();
    }

    /** The user of the request's key, verifying the key on the first call of the request. */
    public function user(): ?Authenticatable
    {
        if (!$this->resolved) {
            $this->resolved = true;
            $this->authenticate();
        }
        return $this->user;
    }

    public function setUser(Authenticatable $user): static
    {
        $this->user = $user;
        $this->resolved = true;
        return $this;
    }

    public function forgetUser(): static
    {
        $this->user = $this->verdict = $this->refusal = null;
        $this->resolved = false;
        return $this;
    }

    /**
     * The request's verdict (verified on first use): valid, or the refusal with its 401/403
     * status and code. Null without a request.
     */
    public function verdict(): ?Verdict
    {
        $this->user();
        return $this->verdict;
    }

    /** Why the request is not authenticated (null when it is): what the 401/403 answer says. */
    public function refusal(): ?Verdict
    {
        $this->user();
        return $this->refusal;
    }

    /**
     * Checks a key given as credentials (['key' => ...], or ['id' => ..., 'secret' => ...])
     * without logging anyone in. This is a verify: it counts a use (or a refusal).
     *
     * @param array<string, mixed> $credentials
     */
    public function validate(array $credentials = []): bool
    {
        $store = $this->store();
        if (isset($credentials['key']) && is_string($credentials['key'])) {
            return $store->verify($credentials['key'])->valid;
        }
        if (isset($credentials['id'], $credentials['secret']) && is_string($credentials['id']) && is_string($credentials['secret'])) {
            return $store->verifyPair($credentials['id'], $credentials['secret'])->valid;
        }
        return false;
    }

    private function authenticate(): void
    {
        $request = $this->request;
        if ($request === null) {
            return;
        }
        $store = $this->store();
        $accepted = $request->attributes->get(Guard::ACCEPTED);
        if (is_array($accepted) && ($reused = Guard::reuse($accepted, $store, [])) !== null) {
            [$verdict, $accepted] = $reused;
        } else {
            $headers = Responses::credentials($request);
            $verdict = $store->verifyCredentials($headers);
            $accepted = $verdict->valid ? Guard::accepted($store, $verdict, [], $headers) : null;
        }
        $this->verdict = $verdict;
        $request->attributes->set(Middleware::ATTRIBUTE, $verdict);
        if (!$verdict->valid) {
            $this->refusal = $verdict;
            return;
        }
        $request->attributes->set(Guard::ACCEPTED, $accepted);
        Guard::remember($accepted);
        $user = $this->resolveUser($verdict);
        if ($user === null) {
            $this->refusal = Responses::ownerNotFound();
            return;
        }
        if (method_exists($user, 'withApiKey')) {
            $user->withApiKey($verdict, $this->scopesOf($verdict, $store));
        }
        $this->user = $user;
    }

    private function resolveUser(Verdict $verdict): ?Authenticatable
    {
        $owner = (string) $verdict->owner();
        if (self::$resolveUsers !== null) {
            return (self::$resolveUsers)($owner, $verdict);
        }
        if ($this->provider !== null) {
            return $this->provider->retrieveById($owner);
        }
        return new KeyOwner($owner, $verdict);
    }

    /** @return \Closure(): list<string> the key's scopes, read (Store::get, no use counted) when first asked */
    private function scopesOf(Verdict $verdict, Store $store): \Closure
    {
        $scopes = null;
        return static function () use (&$scopes, $verdict, $store): array {
            try {
                return $scopes ??= ($verdict->record ?? $store->get((string) $verdict->keyId()))->scopes;
            } catch (NotFoundException) { // deleted since
                return $scopes = [];
            }
        };
    }
}
