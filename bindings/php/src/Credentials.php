<?php

declare(strict_types=1);

namespace Keyward;

use Psr\Http\Message\MessageInterface;

/**
 * Collects the credential headers of a request, for Store::verifyHeaders() and
 * Keyward::extractCredential(). Only the headers keyward reads are returned (x-api-key,
 * authorization, x-api-token-id, x-api-token-secret-key); the parsing itself (schemes,
 * base64, pairs, ambiguity) is the library's, the same in every language.
 */
final class Credentials
{
    /** Lower-case names of the headers keyward reads. */
    public const HEADERS = ['x-api-key', 'authorization', 'x-api-token-id', 'x-api-token-secret-key'];

    /** $_SERVER keys of those headers (CGI/FastCGI naming). */
    private const SERVER_KEYS = [
        'HTTP_X_API_KEY' => 'x-api-key',
        'HTTP_AUTHORIZATION' => 'authorization',
        'HTTP_X_API_TOKEN_ID' => 'x-api-token-id',
        'HTTP_X_API_TOKEN_SECRET_KEY' => 'x-api-token-secret-key',
    ];

    /**
     * The credential headers of a PHP server array ($_SERVER under PHP-FPM, CGI, mod_php or
     * the built-in server) as [name, value] pairs.
     *
     * Authorization comes from HTTP_AUTHORIZATION, else REDIRECT_HTTP_AUTHORIZATION (Apache
     * after a rewrite), else, when the server consumed it (mod_php with Basic), is rebuilt
     * from PHP_AUTH_USER / PHP_AUTH_PW.
     *
     * @param array<string, mixed> $server
     * @return list<array{0: string, 1: string}>
     */
    public static function fromServer(#[\SensitiveParameter] array $server): array
    {
        $headers = [];
        foreach (self::SERVER_KEYS as $key => $name) {
            if (isset($server[$key]) && is_string($server[$key])) {
                $headers[] = [$name, $server[$key]];
            }
        }
        if (!isset($server['HTTP_AUTHORIZATION'])) {
            if (isset($server['REDIRECT_HTTP_AUTHORIZATION']) && is_string($server['REDIRECT_HTTP_AUTHORIZATION'])) {
                $headers[] = ['authorization', $server['REDIRECT_HTTP_AUTHORIZATION']];
            } elseif (isset($server['PHP_AUTH_USER']) && is_string($server['PHP_AUTH_USER'])) {
                $password = isset($server['PHP_AUTH_PW']) && is_string($server['PHP_AUTH_PW']) ? $server['PHP_AUTH_PW'] : '';
                $headers[] = ['authorization', 'Basic ' . base64_encode($server['PHP_AUTH_USER'] . ':' . $password)];
            }
        }
        return $headers;
    }

    /**
     * The credential headers of a PSR-7 request (or any PSR-7 message) as [name, value]
     * pairs, one per header line.
     *
     * @return list<array{0: string, 1: string}>
     */
    public static function fromRequest(MessageInterface $request): array
    {
        $headers = [];
        foreach (self::HEADERS as $name) {
            foreach ($request->getHeader($name) as $value) {
                $headers[] = [$name, (string) $value];
            }
        }
        return $headers;
    }
}
