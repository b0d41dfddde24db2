<?php
// The experiment's Keyward\Guard::check: the same steps (credentials from $_SERVER, the
// verify, the accepted-request record for stacked guards), the verify through the
// keyward_native extension instead of FFI. benches/php-ext/README.md.
declare(strict_types=1);

namespace KeywardBench;

use Keyward\Guard;
use Keyward\Library;
use Keyward\Store;
use Keyward\Verdict;

final class NativeGuard
{
    /** The size of the kw_verdict prefix Keyward\Verdict keeps (its NATIVE_LEN). */
    private const NATIVE_LEN = 272;

    /** @param list<string> $scopes */
    public static function check(array $scopes, Store $store, ?array $server = null, int $cost = 0): Verdict
    {
        $status = \keyward_native_verify_server($store->handle(), $server ?? $_SERVER, $scopes, $cost, $raw);
        $verdict = $status === 0 ? self::verdict($raw) : Verdict::credentialProblem(Library::ffi(), $status);
        if ($verdict->valid) {
            Guard::remember(Guard::accepted($store, $verdict, $scopes, []));
        }
        return $verdict;
    }

    /** A Verdict from the kw_verdict bytes (as Verdict::fromVerify makes it from the CData). */
    public static function verdict(string $raw): Verdict
    {
        [, $reason, $http, $found] = unpack('V3', $raw);
        [$code, $message] = Verdict::REASONS[$reason];
        return new Verdict($reason === 0, $http, $code, $message, $reason, null, null,
            $found === 0 ? null : substr($raw, 0, self::NATIVE_LEN));
    }
}
