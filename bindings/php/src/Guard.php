<?php

declare(strict_types=1);

namespace Keyward;

use Keyward\Exception\KeywardException;
use Keyward\Exception\LibraryException;
use Keyward\Exception\NotFoundException;

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
 *
 * A request is verified once: after Keyward\Middleware (or an earlier Guard call) accepted it,
 * check() and require() reuse that verdict instead of counting another use (see ACCEPTED).
 */
final class Guard
{
    /** Environment variable naming the store file. */
    public const STORE_ENV = 'KEYWARD_STORE';

    /**
     * Where an accepted request's verdict waits for the keyward checks after it: the PSR-7
     * request attribute Middleware passes on, and, under a web SAPI (PHP-FPM, CGI, mod_php,
     * the built-in server), the global variable of this name ($GLOBALS) Guard reads. Globals
     * are only trusted where PHP empties them at the end of each request: never under the
     * CLI SAPI, where long-running servers (RoadRunner, Swoole, ReactPHP) keep them for the
     * life of the process. (A global, not a $_SERVER entry: writing into $_SERVER copies the
     * whole array, ~2 000 instructions of every PHP-FPM request.)
     * An entry is used only for the same store and the same credential headers.
     *
     * @internal the entry's shape may change
     */
    public const ACCEPTED = 'keyward.accepted';

    /** SAPIs whose globals and $_SERVER are not one request's (see ACCEPTED). */
    private const PROCESS_WIDE_SERVER_SAPIS = ['cli', 'phpdbg', 'embed'];

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
        // The default store and $_SERVER with the keyward_native extension: one call does the
        // whole check (PHP-FPM's request path), once this process's first check bound the store.
        // Any status but KW_OK leaves the request to the PHP path, and nothing was counted:
        // nothing bound yet, the environment or store changed, an accepted verdict already in
        // the global ACCEPTED, an unusual header or argument, or a credential problem or
        // failure, which the PHP path turns into the same 401 verdict or exception. (The call
        // is written out here, not in a helper: each function a PHP-FPM request calls starts
        // cold.)
        // With $accepted (KEYWARD_NATIVE_GUARD 2) the extension also finishes the usual answer,
        // an accepted key without rate-limit fields, as the lines below do: the Verdict made
        // and the global ACCEPTED set (without calling PHP code, which starts cold each request).
        if ($store === null && $server === null && \defined('KEYWARD_NATIVE_GUARD') && \KEYWARD_NATIVE_GUARD >= 2
            && Library::$useExtension && \keyward_native_guard($scopes, $cost, $raw, $accepted) === Abi::KW_OK) {
            return $accepted instanceof Verdict ? $accepted : self::nativeVerdict($scopes, $raw);
        }
        if ($store === null) {
            $store = self::store();
            $store->bindNativeGuard();
        }
        $headers = Credentials::fromServer($server ?? $_SERVER);
        $accepted = self::requestScopedGlobals() ? ($GLOBALS[self::ACCEPTED] ?? null) : null;
        if (is_array($accepted) && $accepted['store'] === null) {
            // Left by the extension's path above: the default store and this request's $_SERVER headers.
            $accepted['store'] = self::store();
            $accepted['headers'] = Credentials::fromServer($_SERVER);
        }
        if (is_array($accepted) && $accepted['headers'] === $headers
            && ($accepted['time'] ?? null) === ($_SERVER['REQUEST_TIME_FLOAT'] ?? null)
            && ($reused = self::reuse($accepted, $store, $scopes)) !== null) {
            [$verdict, $accepted] = $reused;
        } else {
            $verdict = $store->verifyCredentials($headers, $scopes, $cost);
            $accepted = $verdict->valid ? self::accepted($store, $verdict, $scopes, $headers) : null;
        }
        if ($accepted !== null) {
            self::remember($accepted);
        }
        return $verdict;
    }

    /**
     * The verdict of keyward_native_guard()'s $raw bytes when the extension did not finish it
     * (a refusal, rate-limit fields), remembered as the extension remembers an accepted one.
     *
     * @param list<string> $scopes
     */
    private static function nativeVerdict(array $scopes, string $raw): Verdict
    {
        $verdict = Verdict::fromBytes($raw) ?? Verdict::fromBytesWithLibrary(Library::ffi(), $raw);
        if ($verdict->valid) {
            // The default store and this request's $_SERVER headers: check() fills them in
            // if a later check needs them.
            self::remember(['store' => null, 'verdict' => $verdict, 'scopes' => $scopes,
                'keyScopes' => null, 'headers' => null, 'time' => $_SERVER['REQUEST_TIME_FLOAT'] ?? null]);
        }
        return $verdict;
    }

    /**
     * What an accepted request carries for the keyward checks after it (see ACCEPTED).
     *
     * @internal
     * @param list<string> $scopes the scopes it was verified for
     * @param list<array{0: string, 1: string}> $headers its credential headers
     * @return array{store: ?Store, verdict: Verdict, scopes: list<string>, keyScopes: ?list<string>, headers: ?list<array{0: string, 1: string}>, time: mixed}
     */
    public static function accepted(Store $store, Verdict $verdict, array $scopes, array $headers): array
    {
        return ['store' => $store, 'verdict' => $verdict, 'scopes' => $scopes, 'keyScopes' => null, 'headers' => $headers,
            'time' => $_SERVER['REQUEST_TIME_FLOAT'] ?? null];
    }

    /**
     * Leaves an accepted request in the global ACCEPTED for a Guard call later in the same
     * request (web SAPIs only; see ACCEPTED).
     *
     * @internal
     * @param array<string, mixed> $accepted from accepted() or reuse()
     */
    public static function remember(array $accepted): void
    {
        if (self::requestScopedGlobals()) {
            $GLOBALS[self::ACCEPTED] = $accepted;
        }
    }

    /**
     * Judges an already accepted request against $scopes without verifying it again: no use
     * is counted and no credit spent ($cost is charged once, by the first check). Scopes the
     * earlier checks covered pass at once; others are looked up in the key's scopes (the
     * verdict's record, else Store::get(), read once per request). A missing scope is the
     * 403 INSUFFICIENT_SCOPE verdict a verify would give.
     *
     * @internal
     * @param array{store: Store, verdict: Verdict, scopes: list<string>, keyScopes: ?list<string>, headers: list<array{0: string, 1: string}>, time: mixed} $accepted
     * @param list<string> $scopes
     * @return ?array{0: Verdict, 1: ?array<string, mixed>} null when $accepted is another
     *     store's (then verify); else the verdict and, when it is valid, the updated entry
     * @throws KeywardException
     */
    public static function reuse(array $accepted, Store $store, array $scopes): ?array
    {
        if ($accepted['store'] !== $store && !self::sameStore($store, $accepted['store'])) {
            return null;
        }
        $verdict = $accepted['verdict'];
        $extra = array_values(array_diff($scopes, $accepted['scopes']));
        if ($extra === []) {
            return [$verdict, $accepted];
        }
        if ($accepted['keyScopes'] === null) {
            try {
                $accepted['keyScopes'] = ($verdict->record ?? $store->get((string) $verdict->keyId()))->scopes;
            } catch (NotFoundException) { // deleted since it was verified
                return [self::refusal(Abi::KW_REASON_NOT_FOUND, 401), null];
            }
        }
        if (array_diff($extra, $accepted['keyScopes']) !== []) {
            return [self::refusal(Abi::KW_REASON_INSUFFICIENT_SCOPE, 403), null];
        }
        $accepted['scopes'] = array_merge($accepted['scopes'], $extra);
        return [$verdict, $accepted];
    }

    private static function refusal(int $reason, int $httpStatus): Verdict
    {
        return new Verdict(false, $httpStatus, Verdict::REASONS[$reason][0], Verdict::REASONS[$reason][1], $reason);
    }

    private static function sameStore(Store $a, mixed $b): bool
    {
        try {
            return $b instanceof Store && $a->sameStore($b);
        } catch (KeywardException) { // a closed handle: verify afresh
            return false;
        }
    }

    private static function requestScopedGlobals(): bool
    {
        return !in_array(PHP_SAPI, self::PROCESS_WIDE_SERVER_SAPIS, true);
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
     * The response headers for a refused verdict: JSON content type, no caching, the RFC 6750
     * WWW-Authenticate challenge, and for a rate-limited key RateLimit-Policy / RateLimit
     * (and Retry-After on a 429).
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
        return $headers + $verdict->rateHeaders();
    }
}
