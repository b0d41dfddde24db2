<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Contracts\Auth\Factory as AuthFactory;
use Illuminate\Http\Request;
use Keyward\Guard;
use Keyward\Middleware;
use Keyward\Store;
use Keyward\Verdict;
use Symfony\Component\HttpFoundation\Response;

/**
 * Route middleware requiring ALL the listed abilities (keyward scopes), like Sanctum's
 * `abilities:` middleware: `->middleware(['auth:keyward', 'abilities:invoices:read,invoices:write'])`
 * once the alias points here (Http\Kernel::$routeMiddleware; the service provider also
 * registers it as `keyward.abilities`).
 *
 * It reuses the verdict of `auth:keyward` (or of any keyward check earlier in the request):
 * no second verify, no second use counted. On its own it authenticates the request through
 * the `keyward` guard (config keyward.guard). A refused request is answered here, with the
 * status, headers and JSON body of Keyward\Middleware: 401 for no/invalid/revoked key,
 * 403 INSUFFICIENT_SCOPE for a key lacking an ability.
 */
class CheckAbilities
{
    public function __construct(protected AuthFactory $auth)
    {
    }

    /** @return Response */
    public function handle(Request $request, \Closure $next, string ...$abilities)
    {
        [$accepted, $refusal] = $this->accepted($request);
        if ($refusal !== null) {
            return Responses::deny($refusal);
        }
        [$verdict, $accepted] = $this->judge($accepted, $abilities);
        if (!$verdict->valid) {
            return Responses::deny($verdict);
        }
        $request->attributes->set(Guard::ACCEPTED, $accepted);
        Guard::remember($accepted);
        $response = $next($request);
        // A rate-limited key's state goes out with the response.
        if (is_object($response) && isset($response->headers)) {
            foreach ($verdict->rateHeaders() as $name => $value) {
                $response->headers->set($name, $value);
            }
        }
        return $response;
    }

    /**
     * All abilities at once: Guard::reuse(), the rule Keyward\Middleware applies when stacked.
     *
     * @param array<string, mixed> $accepted
     * @param list<string> $abilities
     * @return array{0: Verdict, 1: ?array<string, mixed>}
     */
    protected function judge(array $accepted, array $abilities): array
    {
        return Guard::reuse($accepted, $accepted['store'], array_values($abilities)) ?? [Responses::insufficientScope(), null];
    }

    /**
     * The request's accepted-key entry, authenticating through the keyward guard when no
     * keyward check has run yet; or the refusal to answer.
     *
     * @return array{0: ?array<string, mixed>, 1: ?Verdict}
     */
    protected function accepted(Request $request): array
    {
        $accepted = $request->attributes->get(Guard::ACCEPTED);
        $verdict = $request->attributes->get(Middleware::ATTRIBUTE);
        if (is_array($accepted) && $accepted['store'] instanceof Store && $verdict instanceof Verdict && $verdict->valid) {
            return [$accepted, null];
        }
        $guard = $this->auth->guard($this->guardName());
        if (!$guard instanceof KeywardGuard) {
            throw new \LogicException('keyward ability middleware: the guard "' . $this->guardName() . '" is not a keyward guard (set keyward.guard)');
        }
        $guard->setRequest($request);
        if (!$guard->check()) {
            return [null, $guard->refusal() ?? Responses::ownerNotFound()];
        }
        return [$request->attributes->get(Guard::ACCEPTED), null];
    }

    protected function guardName(): string
    {
        $config = function_exists('config') ? config('keyward.guard') : null;
        return is_string($config) && $config !== '' ? $config : 'keyward';
    }
}
