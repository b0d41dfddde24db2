<?php

declare(strict_types=1);

namespace Keyward\Tests\Fpm;

/**
 * A minimal FastCGI client (one GET request per connection, responder role), for timing
 * requests without spawning a cgi-fcgi process per request: a process spawn per request
 * disturbs what is measured on a two-core machine. The functional tests use cgi-fcgi.
 */
final class FastCgi
{
    private const BEGIN_REQUEST = 1;
    private const END_REQUEST = 3;
    private const PARAMS = 4;
    private const STDIN = 5;
    private const STDOUT = 6;

    /**
     * Sends one request to the unix socket and returns the raw response (headers and body).
     *
     * @param array<string, string> $params FastCGI parameters (CGI environment)
     */
    public static function request(string $socket, array $params): string
    {
        $conn = stream_socket_client("unix://$socket", $errno, $error, 5.0);
        if ($conn === false) {
            throw new \RuntimeException("cannot connect to $socket: $error");
        }
        $pairs = '';
        foreach ($params as $name => $value) {
            $pairs .= self::length(strlen($name)) . self::length(strlen($value)) . $name . $value;
        }
        fwrite($conn, self::record(self::BEGIN_REQUEST, pack('nCx5', 1, 0))
            . self::record(self::PARAMS, $pairs) . self::record(self::PARAMS, '')
            . self::record(self::STDIN, ''));
        $out = '';
        while (true) {
            $header = self::read($conn, 8);
            $h = unpack('Cversion/Ctype/nid/nlength/Cpadding', $header);
            $content = self::read($conn, $h['length'] + $h['padding']);
            if ($h['type'] === self::STDOUT) {
                $out .= substr($content, 0, $h['length']);
            } elseif ($h['type'] === self::END_REQUEST) {
                break;
            }
        }
        fclose($conn);
        return $out;
    }

    private static function record(int $type, string $content): string
    {
        return pack('CCnnCx', 1, $type, 1, strlen($content), 0) . $content;
    }

    private static function length(int $n): string
    {
        return $n < 128 ? chr($n) : pack('N', $n | 0x80000000);
    }

    /** @param resource $conn */
    private static function read($conn, int $n): string
    {
        $data = '';
        while (strlen($data) < $n) {
            $chunk = fread($conn, $n - strlen($data));
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('FastCGI connection closed early');
            }
            $data .= $chunk;
        }
        return $data;
    }
}
