<?php

declare(strict_types=1);

namespace Keyward;

use Keyward\Exception\KeywardException;
use Keyward\Exception\LibraryException;

/**
 * API-key protection for plain PHP scripts, without a framework:
 *
 *     require 'vendor/autoload.php';
 *     $verdict = Keyward\Guard::require(['invoices:read']);   // 401/403 + exit when refused
 *     echo "hello {$verdict->owner()}";
 *
 * The store is the worker's persistent store (Store::persistent()) at the path in the
 * KEYWARD_STORE environment variable (PHP-FPM pool: env[KEYWARD_STORE] = /var/lib/app/keys.redb),
 * with the pepper from KEYWARD_PEPPER_FILE or KEYWARD_PEPPER (hex) when set, else the default
 * "<store>.pepper" file. Pass a Store to use another.
 */
final class Guard
{
    /** Environment variable naming the store file. */
    public const STORE_ENV = 'KEYWARD_STORE';

    /**
     * Verifies the current request's API key (from $_SERVER) against the scopes. When it is
     * refused, sends 401 or 403 with a JSON body {"ok": false, "code", "message"} and exits.
     *
     * @param list<string> $scopes scopes the script requires
     * @param int $cost credits to spend if the key is limited (0 = its own cost)
     * @return Verdict the valid verdict (key id, owner, env...)
     * @throws KeywardException when the store cannot be used (never for a refused key)
     */
    public static function require(array $scopes = [], ?Store $store = null, int $cost = 0): Verdict
    {
        $verdict = self::check($scopes, $store, null, $cost);
        if (!$verdict->valid) {
            self::deny($verdict);
            exit(0);
        }
        return $verdict;
    }

    /**
     * Verifies the current request's API key without answering: the Verdict, valid or not.
     *
     * @param list<string> $scopes
     * @param ?array<string, mixed> $server default $_SERVER
     * @throws KeywardException
     */
    public static function check(array $scopes = [], ?Store $store = null, ?array $server = null, int $cost = 0): Verdict
    {
        return ($store ?? self::store())->verifyServer($server ?? $_SERVER, $scopes, $cost);
    }

    /**
     * The worker's store configured by KEYWARD_STORE (and KEYWARD_PEPPER_FILE / KEYWARD_PEPPER).
     *
     * @throws KeywardException LibraryException when KEYWARD_STORE is not set
     */
    public static function store(): Store
    {
        $path = getenv(self::STORE_ENV, true);
        if (!is_string($path) || $path === '') {
            throw new LibraryException('Keyward\Guard: set the ' . self::STORE_ENV
                . ' environment variable to the key store path (PHP-FPM pool: env[' . self::STORE_ENV . '] = /path/keys.redb), or pass a Store');
        }
        $pepperFile = getenv('KEYWARD_PEPPER_FILE', true);
        $pepper = getenv('KEYWARD_PEPPER', true);
        return Store::persistent(
            $path,
            pepper: is_string($pepper) && $pepper !== '' ? $pepper : null,
            pepperFile: is_string($pepperFile) && $pepperFile !== '' ? $pepperFile : null,
        );
    }

    /** Sends the 401/403 status, headers and JSON body of a refused verdict (does not exit). */
    public static function deny(Verdict $verdict): void
    {
        if (!headers_sent()) {
            foreach (self::headers($verdict) as $name => $value) {
                header("$name: $value");
            }
            // After the headers: PHP turns the status into 401 on a WWW-Authenticate header.
            http_response_code($verdict->httpStatus);
        }
        echo self::body($verdict);
    }

    /** The JSON body for a verdict: {"ok": false, "code": "...", "message": "..."}. */
    public static function body(Verdict $verdict): string
    {
        return json_encode($verdict, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES) . "\n";
    }

    /**
     * The response headers for a refused verdict: JSON content type, no caching, and the
     * RFC 6750 WWW-Authenticate challenge.
     *
     * @return array<string, string>
     */
    public static function headers(Verdict $verdict): array
    {
        $headers = ['Content-Type' => 'application/json', 'Cache-Control' => 'no-store'];
        if ($verdict->httpStatus === 401) {
            $headers['WWW-Authenticate'] = 'Bearer';
        } elseif ($verdict->code === 'INSUFFICIENT_SCOPE') {
            $headers['WWW-Authenticate'] = 'Bearer error="insufficient_scope"';
        }
        return $headers;
    }
}
