<?php

declare(strict_types=1);

namespace Keyward;

use FFI;
use FFI\CData;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\InternalException;
use Keyward\Exception\KeywardException;

/**
 * Marshalling between PHP values and the C ABI's (pointer, length) strings, arrays and
 * caller-owned buffers.
 *
 * @internal not part of the public API
 */
final class Native
{
    /** @var array<int, string> kw_reason values => codes, cached per request */
    private static array $reasonCodes = [];

    /** @var array<int, string> */
    private static array $reasonMessages = [];

    /**
     * Throws the exception of a failed call's status family, with the library's detailed
     * cause (kw_last_error_message: which file, which permission, what to do) when it has one.
     * Call it right after the failed call: the next keyward call on the thread clears the cause.
     *
     * @param string $context what failed, e.g. "kw_get('3hZ0bq9XcV1mT7pK')"; never a secret
     * @throws KeywardException always
     */
    public static function fail(FFI $ffi, int $status, string $context): never
    {
        $detail = self::lastErrorMessage($ffi); // first: any other keyward call clears it
        throw KeywardException::fromStatus(
            $status,
            $ffi->kw_status_name($status),
            $ffi->kw_status_message($status),
            $context,
            $detail,
            $ffi->kw_status_family($status),
        );
    }

    /**
     * The detailed message of the last failed keyward call on this thread
     * (kw_last_error_message), "" when it has none. Never holds a secret.
     */
    public static function lastErrorMessage(FFI $ffi): string
    {
        $len = $ffi->new('size_t');
        $capacity = 1024;
        for ($attempt = 0; $attempt < 3; $attempt++) {
            $buf = $ffi->new("uint8_t[$capacity]");
            $status = $ffi->kw_last_error_message($buf, $capacity, FFI::addr($len));
            if ($status === Abi::KW_OK) {
                return self::redact(FFI::string($buf, $len->cdata));
            }
            if ($status !== Abi::KW_BUFFER_TOO_SMALL) {
                return '';
            }
            $capacity = $len->cdata; // the size needed (this call does not clear the message)
        }
        return '';
    }

    /**
     * The library's message with anything shaped like a key or a secret replaced by its length.
     * The library quotes what it was given ("no key with id \"...\" exists"), and a full key
     * passed where an id is expected would otherwise reach logs through the exception, which
     * the binding's own context already prevents (Store::ctx shows such a value as its length).
     * Public ids (16 characters) and file paths are kept.
     */
    public static function redact(string $detail): string
    {
        return preg_replace_callback(
            '/(?<![A-Za-z0-9_])(?:[a-z0-9]{1,16}_(?:[A-Za-z0-9]{1,16}_)?[A-Za-z0-9]{20,}|[A-Za-z0-9]{27,})(?![A-Za-z0-9_])/',
            static fn (array $m): string => sprintf('<%d bytes>', strlen($m[0])),
            $detail,
        ) ?? '';
    }

    /** An ArgumentException raised by the binding itself (before any C call). */
    public static function argument(string $message): ArgumentException
    {
        return new ArgumentException(Abi::KW_INVALID_ARGUMENT, 'INVALID_ARGUMENT', $message);
    }

    /** The stable code of a kw_reason, e.g. "INSUFFICIENT_SCOPE". */
    public static function reasonCode(FFI $ffi, int $reason): string
    {
        return self::$reasonCodes[$reason] ??= $ffi->kw_reason_code($reason);
    }

    /** The English message of a kw_reason. */
    public static function reasonMessage(FFI $ffi, int $reason): string
    {
        return self::$reasonMessages[$reason] ??= $ffi->kw_reason_message($reason);
    }

    /**
     * A C copy of $bytes (one spare byte at the end, so a pointer to any offset up to the
     * length is in bounds). Returns the buffer (keep it referenced while C uses it) and a
     * `char *` to its first byte. Pointers into it are FFI::addr($buffer[$offset]): PHP 8.2's
     * FFI pointer arithmetic (`$ptr + $n`) fails intermittently with "Unsupported operand types".
     *
     * @return array{0: CData, 1: CData}
     */
    public static function bytes(FFI $ffi, string $bytes): array
    {
        $len = strlen($bytes);
        $buf = $ffi->new('char[' . ($len + 1) . ']');
        if ($len > 0) {
            FFI::memcpy($buf, $bytes, $len);
        }
        return [$buf, FFI::addr($buf[0])];
    }

    /**
     * Fills a kw_str field: {NULL, 0} for null, else a C copy of the string.
     *
     * @param list<CData> $keep buffers to keep alive until the call returns
     */
    public static function setStr(FFI $ffi, CData $field, ?string $value, array &$keep): void
    {
        if ($value === null) {
            $field->ptr = null;
            $field->len = 0;
            return;
        }
        [$buf, $ptr] = self::bytes($ffi, $value);
        $keep[] = $buf;
        $field->ptr = $ptr;
        $field->len = strlen($value);
    }

    /**
     * A `kw_str` array of $values (all strings). Returns a pointer to its first element (null
     * for an empty list) and the count.
     *
     * @param array<mixed> $values
     * @param string $what the argument's name, for error messages
     * @param list<CData> $keep
     * @return array{0: ?CData, 1: int}
     * @throws ArgumentException when a value is not a string (INVALID_ARGUMENT), or there are
     *     more than Abi::KW_MAX_SCOPES (TOO_LONG, as the library answers at every other door)
     */
    public static function strings(FFI $ffi, array $values, string $what, array &$keep): array
    {
        if ($values === []) {
            return [null, 0];
        }
        if (count($values) > Abi::KW_MAX_SCOPES) {
            throw new ArgumentException(Abi::KW_TOO_LONG, 'TOO_LONG',
                sprintf('%s: at most %d values, got %d', $what, Abi::KW_MAX_SCOPES, count($values)));
        }
        $joined = '';
        foreach ($values as $i => $value) {
            if (!is_string($value)) {
                throw self::argument(sprintf('%s[%s] must be a string, got %s', $what, $i, get_debug_type($value)));
            }
            $joined .= $value;
        }
        [$buf] = self::bytes($ffi, $joined);
        $n = count($values);
        $array = $ffi->new("kw_str[$n]");
        $offset = 0;
        $i = 0;
        foreach ($values as $value) {
            $array[$i]->ptr = FFI::addr($buf[$offset]);
            $array[$i]->len = strlen($value);
            $offset += strlen($value);
            $i++;
        }
        $keep[] = $buf;
        $keep[] = $array;
        return [FFI::addr($array[0]), $n];
    }

    /**
     * Normalises request headers to a list of [name, value] string pairs. Accepts a list of
     * pairs (`[['x-api-key', $key]]`) or a map of name => value or list of values (the shape
     * of PSR-7's getHeaders()).
     *
     * @param array<mixed> $headers
     * @return list<array{0: string, 1: string}>
     * @throws ArgumentException for any other shape
     */
    public static function headerPairs(array $headers): array
    {
        $pairs = [];
        foreach ($headers as $key => $item) {
            if (is_string($key)) {
                foreach (is_array($item) ? $item : [$item] as $value) {
                    if (!is_string($value)) {
                        throw self::argument(sprintf('headers[%s]: values must be strings, got %s', $key, get_debug_type($value)));
                    }
                    $pairs[] = [$key, $value];
                }
                continue;
            }
            if (!is_array($item) || count($item) !== 2 || !is_string($item[0] ?? null) || !is_string($item[1] ?? null)) {
                throw self::argument(sprintf(
                    'headers[%s] must be a [name, value] pair of strings (or use a name => value map), got %s',
                    $key,
                    get_debug_type($item),
                ));
            }
            $pairs[] = [$item[0], $item[1]];
        }
        return $pairs;
    }

    /**
     * A `kw_header` array of the pairs (all strings in one C buffer). Returns a pointer to the
     * first element (null when empty) and the count.
     *
     * @param list<array{0: string, 1: string}> $pairs
     * @param list<CData> $keep
     * @return array{0: ?CData, 1: int}
     */
    public static function headers(FFI $ffi, array $pairs, array &$keep): array
    {
        if ($pairs === []) {
            return [null, 0];
        }
        $joined = '';
        foreach ($pairs as [$name, $value]) {
            $joined .= $name . $value;
        }
        [$buf] = self::bytes($ffi, $joined);
        $n = count($pairs);
        $array = $ffi->new("kw_header[$n]");
        $offset = 0;
        foreach ($pairs as $i => [$name, $value]) {
            $header = $array[$i];
            $header->name = FFI::addr($buf[$offset]);
            $header->name_len = strlen($name);
            $offset += strlen($name);
            $header->value = FFI::addr($buf[$offset]);
            $header->value_len = strlen($value);
            $offset += strlen($value);
        }
        $keep[] = $buf;
        $keep[] = $array;
        return [FFI::addr($array[0]), $n];
    }

    /**
     * Writes the pairs into $block, a C block of at least headerBlockSize() bytes at address
     * $address, as the `kw_header` array followed by every name and value, with a single copy
     * of a string built with pack() (no C field written one by one, no type parsed). Returns
     * the bytes written (zero them after the call: they hold the secret).
     *
     * @param list<array{0: string, 1: string}> $pairs
     */
    public static function writeHeaders(CData $block, int $address, array $pairs): int
    {
        $strings = '';
        foreach ($pairs as [$name, $value]) {
            $strings .= $name . $value;
        }
        $at = $address + count($pairs) * self::HEADER_SIZE;
        $packed = '';
        foreach ($pairs as [$name, $value]) {
            // struct kw_header { const char *name; size_t name_len; const char *value; size_t value_len; }
            $packed .= pack(self::HEADER_PACK, $at, strlen($name), $at + strlen($name), strlen($value));
            $at += strlen($name) + strlen($value);
        }
        $packed .= $strings;
        FFI::memcpy($block, $packed, strlen($packed));
        return strlen($packed);
    }

    /**
     * Bytes writeHeaders() needs for the pairs.
     *
     * @param list<array{0: string, 1: string}> $pairs
     */
    public static function headerBlockSize(array $pairs): int
    {
        $size = count($pairs) * self::HEADER_SIZE;
        foreach ($pairs as [$name, $value]) {
            $size += strlen($name) + strlen($value);
        }
        return $size;
    }

    /** sizeof(kw_header): two pointers and two size_t (a test checks it against the C type). */
    public const HEADER_SIZE = 4 * PHP_INT_SIZE;

    /** pack() format of one kw_header (native byte order, word-sized fields). */
    private const HEADER_PACK = PHP_INT_SIZE === 8 ? 'QQQQ' : 'LLLL';

    /**
     * Runs a call that writes JSON to a caller-owned buffer, `$call(buf, cap, out_len)`,
     * growing the buffer on KW_BUFFER_TOO_SMALL (the output can grow between attempts), and
     * decodes the JSON.
     *
     * @param callable(CData, int, CData): int $call
     * @throws KeywardException
     */
    public static function json(FFI $ffi, callable $call, string $context, int $capacity = 65536): mixed
    {
        $len = $ffi->new('size_t');
        for ($attempt = 0; $attempt < 8; $attempt++) {
            $buf = $ffi->new("uint8_t[$capacity]");
            $status = $call($buf, $capacity, FFI::addr($len));
            if ($status === Abi::KW_OK) {
                return self::decode(FFI::string($buf, $len->cdata), $context);
            }
            if ($status !== Abi::KW_BUFFER_TOO_SMALL) {
                self::fail($ffi, $status, $context);
            }
            $capacity = max($len->cdata, $capacity * 2);
        }
        throw new InternalException(Abi::KW_BUFFER_TOO_SMALL, 'BUFFER_TOO_SMALL', "$context: the output kept growing");
    }

    /**
     * Decodes a JSON output of the library.
     *
     * @throws InternalException when it is not valid JSON (a bug)
     */
    public static function decode(string $json, string $context): mixed
    {
        try {
            return json_decode($json, true, 64, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new InternalException(Abi::KW_PANIC, 'PANIC', "$context: the library returned invalid JSON ({$e->getMessage()})", $e);
        }
    }

    /**
     * A uint32 argument, checked.
     *
     * @throws ArgumentException
     */
    public static function u32(int $value, string $what): int
    {
        if ($value < 0 || $value > 0xFFFFFFFF) {
            throw self::argument("$what must be between 0 and 4294967295, got $value");
        }
        return $value;
    }

    /**
     * A non-negative int64 argument, checked.
     *
     * @throws ArgumentException
     */
    public static function nonNegative(int $value, string $what): int
    {
        if ($value < 0) {
            throw self::argument("$what must not be negative, got $value");
        }
        return $value;
    }

    /** Milliseconds since the epoch of an int (taken as is) or a date. */
    public static function ms(int|\DateTimeInterface $time): int
    {
        if ($time instanceof \DateTimeInterface) {
            return intdiv((int) $time->format('Uu'), 1000);
        }
        return $time;
    }

    /** A NUL-terminated char array field as a string. */
    public static function cString(CData $chars): string
    {
        return FFI::string($chars);
    }
}
