<?php

declare(strict_types=1);

namespace Keyward;

use Psr\Http\Message\ResponseFactoryInterface;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * PSR-15 middleware: verifies the request's API key and either passes the request on with
 * the Verdict as a request attribute ("keyward.verdict" by default), or answers itself:
 * 401 (no, malformed, unknown, revoked or expired key) or 403 (valid key without a required
 * scope, or out of credits), with a JSON body {"ok": false, "code": "...", "message": "..."}.
 *
 *     $keys = new Middleware(fn () => Store::persistent('/var/lib/app/keys.redb'), $psr17, $psr17);
 *     $app->add($keys->requiring('invoices:read'));
 *
 * The store may be given as a Store or as a closure returning one (called per request: pass
 * fn () => Store::persistent(...) so the worker's warm store is used).
 *
 * Stacking is safe: a request an earlier keyward Middleware (on the same store) accepted is
 * not verified again. This one reuses that verdict (request attribute Guard::ACCEPTED), so
 * the request counts one use and spends its credits once; scopes it needs beyond those
 * already checked are looked up in the key's record (Store::get(), which counts nothing),
 * and a missing one answers the same 403 INSUFFICIENT_SCOPE. Guard::require() / check()
 * later in the same request reuse the verdict too (under a web SAPI; see Guard::ACCEPTED).
 */
final class Middleware implements MiddlewareInterface
{
    /** Default name of the request attribute that carries the Verdict. */
    public const ATTRIBUTE = 'keyward.verdict';

    /**
     * @param Store|\Closure(): Store $store the store, or a closure returning it
     * @param ResponseFactoryInterface $responses PSR-17 factory for the 401/403 responses
     * @param StreamFactoryInterface $streams PSR-17 factory for their bodies
     * @param list<string> $scopes scopes every request needs
     * @param string $attribute request attribute receiving the Verdict
     * @param ?\Closure(ServerRequestInterface): list<string> $scopesFor per-request scopes
     *     (e.g. from the route); replaces $scopes when given
     */
    public function __construct(
        private readonly Store|\Closure $store,
        private readonly ResponseFactoryInterface $responses,
        private readonly StreamFactoryInterface $streams,
        private readonly array $scopes = [],
        private readonly string $attribute = self::ATTRIBUTE,
        private readonly ?\Closure $scopesFor = null,
    ) {
    }

    /** A copy of this middleware that requires these scopes (e.g. per route). */
    public function requiring(string ...$scopes): self
    {
        return new self($this->store, $this->responses, $this->streams, array_values($scopes), $this->attribute, null);
    }

    /**
     * Verifies the request; passes it on with the verdict, or answers 401/403.
     *
     * @throws Exception\KeywardException when the store itself fails (not for a refused key)
     */
    public function process(ServerRequestInterface $request, RequestHandlerInterface $handler): ResponseInterface
    {
        $store = $this->store instanceof Store ? $this->store : ($this->store)();
        $scopes = $this->scopesFor !== null ? ($this->scopesFor)($request) : $this->scopes;
        $accepted = $request->getAttribute(Guard::ACCEPTED);
        $fresh = false;
        if (is_array($accepted) && ($reused = Guard::reuse($accepted, $store, $scopes)) !== null) {
            [$verdict, $accepted] = $reused;
        } else {
            $fresh = true;
            $headers = Credentials::fromRequest($request);
            $verdict = $store->verifyCredentials($headers, $scopes);
            $accepted = $verdict->valid ? Guard::accepted($store, $verdict, $scopes, $headers) : null;
        }
        if (!$verdict->valid) {
            return $this->deny($verdict);
        }
        Guard::remember($accepted);
        $response = $handler->handle($request->withAttribute($this->attribute, $verdict)->withAttribute(Guard::ACCEPTED, $accepted));
        // A rate-limited key's state goes out with the response (once: by the layer that verified).
        foreach ($fresh ? $verdict->rateHeaders() : [] as $name => $value) {
            $response = $response->withHeader($name, $value);
        }
        return $response;
    }

    /** The 401/403/429 JSON response for a refused verdict. */
    public function deny(Verdict $verdict): ResponseInterface
    {
        $response = $this->responses->createResponse($verdict->httpStatus)
            ->withBody($this->streams->createStream(Guard::body($verdict)));
        foreach (Guard::headers($verdict) as $name => $value) {
            $response = $response->withHeader($name, $value);
        }
        return $response;
    }
}
