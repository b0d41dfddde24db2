<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Http\Request;
use Illuminate\Http\Response;
use Keyward\Abi;
use Keyward\Credentials;
use Keyward\Guard;
use Keyward\Verdict;

/**
 * The Laravel side of the verdict → HTTP mapping: the same status, headers and JSON body as
 * Keyward\Middleware (PSR-15) and Keyward\Guard, built from Guard::body() and
 * Guard::headers(), which stay the one source of truth.
 */
final class Responses
{
    /** Code of the 401 answered when a valid key's owner maps to no user of the application. */
    public const OWNER_NOT_FOUND = 'OWNER_NOT_FOUND';

    /** The 401/403 response for a refused verdict. */
    public static function deny(Verdict $verdict): Response
    {
        $response = new Response(Guard::body($verdict), $verdict->httpStatus);
        $response->headers = new RefusalHeaders(Guard::headers($verdict));
        return $response;
    }

    /**
     * The refusal when the key is valid but the application's user hook found no user for
     * its owner (a 401: the request is not authenticated).
     */
    public static function ownerNotFound(): Verdict
    {
        return new Verdict(false, 401, self::OWNER_NOT_FOUND, "the API key's owner is not a user of this application", null);
    }

    /** The 403 a key lacking a required scope gets, as a verify would answer it. */
    public static function insufficientScope(): Verdict
    {
        $reason = Abi::KW_REASON_INSUFFICIENT_SCOPE;
        return new Verdict(false, 403, Verdict::REASONS[$reason][0], Verdict::REASONS[$reason][1], $reason);
    }

    /**
     * The credential headers of a Laravel (Symfony HttpFoundation) request as [name, value]
     * pairs, like Credentials::fromRequest() for PSR-7. Symfony rebuilds Authorization from
     * PHP_AUTH_USER / PHP_AUTH_PW and REDIRECT_HTTP_AUTHORIZATION itself.
     *
     * @return list<array{0: string, 1: string}>
     */
    public static function credentials(Request $request): array
    {
        $headers = [];
        foreach (Credentials::HEADERS as $name) {
            foreach ($request->headers->all($name) as $value) {
                if ($value !== null) {
                    $headers[] = [$name, (string) $value];
                }
            }
        }
        return $headers;
    }
}
