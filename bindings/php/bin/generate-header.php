<?php

declare(strict_types=1);

/*
 * Generates the files of the PHP binding that come from include/keyward.h:
 *
 *   keyward.h          the declarations only, without preprocessor lines or comments, as
 *                      FFI::cdef() needs them (it cannot read #define, #if or #include);
 *   keyward.preload.h  the same, led by `#define FFI_SCOPE "KEYWARD"` and
 *                      `#define FFI_LIB "libkeyward.so.<KW_ABI_VERSION>"` (the SONAME), for
 *                      FFI::load() in opcache.preload or ffi.preload;
 *   src/Abi.php        every #define and enum constant of the header as a PHP constant;
 *   ext/keyward.h      the header itself, for the optional extension (ext/README.md).
 *
 * The C header is read as a C11 compiler would (no __cplusplus, __STDC_VERSION__ 201112L):
 * every #if/#ifdef/#ifndef/#else/#endif is evaluated, #define constants are collected,
 * #include lines dropped. Any other directive, or an expression it cannot evaluate, stops it
 * with an error, so a header change never silently produces a wrong copy.
 *
 *   php bin/generate-header.php [path/to/keyward.h]           write the four files
 *   php bin/generate-header.php --check [path/to/keyward.h]   exit 1 if any file differs
 *
 * The default header is ../../include/keyward.h (the repository's), relative to the package.
 */

namespace Keyward\Build;

const C_ENV = ['__STDC_VERSION__' => 201112, '__STDC__' => 1];

final class HeaderError extends \RuntimeException
{
}

/**
 * Evaluates a preprocessor condition (integers, identifiers, defined(X), ! && || and
 * comparisons, parentheses). Undefined identifiers are 0, as in C.
 *
 * @param array<string, int|string|null> $defines
 */
function evaluate(string $expr, array $defines, int $line): int
{
    $expr = preg_replace('~//.*$~', '', $expr) ?? $expr;
    if (preg_match_all('~\s*(defined|\d+L?|[A-Za-z_]\w*|\|\||&&|>=|<=|==|!=|[!<>()])~A', $expr, $m) === false) {
        throw new HeaderError("line $line: cannot tokenize #if expression: $expr");
    }
    $tokens = $m[1];
    if (implode('', $tokens) !== preg_replace('~\s+~', '', $expr)) {
        throw new HeaderError("line $line: unsupported #if expression: $expr");
    }
    $pos = 0;
    $value = function (string $name) use ($defines, $line): int {
        if (array_key_exists($name, C_ENV)) {
            return C_ENV[$name];
        }
        if (!array_key_exists($name, $defines)) {
            return 0;
        }
        $v = $defines[$name];
        if ($v === null || $v === '' || !preg_match('~^\d+$~', (string) $v)) {
            throw new HeaderError("line $line: cannot use macro $name in #if");
        }
        return (int) $v;
    };
    $primary = function () use (&$tokens, &$pos, &$primary, &$or, $value, $defines, $line): int {
        $t = $tokens[$pos++] ?? throw new HeaderError("line $line: truncated #if expression");
        if ($t === '!') {
            return $primary() === 0 ? 1 : 0;
        }
        if ($t === '(') {
            $v = $or();
            if (($tokens[$pos++] ?? '') !== ')') {
                throw new HeaderError("line $line: missing ) in #if expression");
            }
            return $v;
        }
        if ($t === 'defined') {
            $paren = ($tokens[$pos] ?? '') === '(';
            if ($paren) {
                $pos++;
            }
            $name = $tokens[$pos++] ?? '';
            if ($paren && ($tokens[$pos++] ?? '') !== ')') {
                throw new HeaderError("line $line: bad defined()");
            }
            return array_key_exists($name, $defines) || array_key_exists($name, C_ENV) ? 1 : 0;
        }
        if (preg_match('~^(\d+)L?$~', $t, $n)) {
            return (int) $n[1];
        }
        return $value($t);
    };
    $cmp = function () use (&$tokens, &$pos, $primary): int {
        $v = $primary();
        while (in_array($tokens[$pos] ?? '', ['>=', '<=', '==', '!=', '<', '>'], true)) {
            $op = $tokens[$pos++];
            $r = $primary();
            $v = (int) match ($op) {
                '>=' => $v >= $r, '<=' => $v <= $r, '==' => $v === $r,
                '!=' => $v !== $r, '<' => $v < $r, '>' => $v > $r,
            };
        }
        return $v;
    };
    $and = function () use (&$tokens, &$pos, $cmp): int {
        $v = $cmp();
        while (($tokens[$pos] ?? '') === '&&') {
            $pos++;
            $r = $cmp();
            $v = (int) ($v !== 0 && $r !== 0);
        }
        return $v;
    };
    $or = function () use (&$tokens, &$pos, $and): int {
        $v = $and();
        while (($tokens[$pos] ?? '') === '||') {
            $pos++;
            $r = $and();
            $v = (int) ($v !== 0 || $r !== 0);
        }
        return $v;
    };
    $result = $or();
    if ($pos !== count($tokens)) {
        throw new HeaderError("line $line: trailing tokens in #if expression: $expr");
    }
    return $result;
}

/**
 * Evaluates the value of a numeric #define: an integer, UINT64_MAX, or integer arithmetic
 * with + - * and parentheses. Returns a PHP literal (UINT64_MAX becomes -1, the same 64 bits).
 */
function constant_literal(string $name, string $value): string
{
    $value = trim(preg_replace('~/\*.*?\*/|//.*$~', '', $value) ?? $value);
    if ($value === 'UINT64_MAX') {
        return '-1';
    }
    if (!preg_match('~^[\d\s()*+\-]+$~', $value)) {
        throw new HeaderError("#define $name: unsupported value '$value'");
    }
    $expr = preg_replace('~\s+~', '', $value) ?? '';
    $pos = 0;
    $term = null;
    $sum = function () use (&$expr, &$pos, &$term): int {
        $v = $term();
        while ($pos < strlen($expr) && ($expr[$pos] === '+' || $expr[$pos] === '-')) {
            $op = $expr[$pos++];
            $r = $term();
            $v = $op === '+' ? $v + $r : $v - $r;
        }
        return $v;
    };
    $atom = function () use (&$expr, &$pos, $sum, $name): int {
        if (($expr[$pos] ?? '') === '(') {
            $pos++;
            $v = $sum();
            if (($expr[$pos++] ?? '') !== ')') {
                throw new HeaderError("#define $name: missing )");
            }
            return $v;
        }
        if (!preg_match('~\d+~A', $expr, $m, 0, $pos)) {
            throw new HeaderError("#define $name: expected a number");
        }
        $pos += strlen($m[0]);
        return (int) $m[0];
    };
    $term = function () use (&$expr, &$pos, $atom): int {
        $v = $atom();
        while (($expr[$pos] ?? '') === '*') {
            $pos++;
            $v *= $atom();
        }
        return $v;
    };
    $v = $sum();
    if ($pos !== strlen($expr)) {
        throw new HeaderError("#define $name: trailing text in '$value'");
    }
    return (string) $v;
}

/**
 * Runs the preprocessor pass. Returns [declaration text without comments, numeric defines
 * (name => PHP literal) in header order].
 *
 * @return array{0: string, 1: array<string, string>}
 */
function preprocess(string $source): array
{
    // Comments go first (they may hold '#' and braces); newlines inside them are kept so line
    // numbers in error messages stay right.
    $source = preg_replace_callback(
        '~/\*.*?\*/~s',
        static fn (array $m): string => str_repeat("\n", substr_count($m[0], "\n")),
        $source,
    ) ?? throw new HeaderError('cannot strip comments');
    $defines = [];
    $numeric = [];
    $stack = []; // each: [active now, some branch taken, parent active]
    $active = true;
    $out = [];
    foreach (explode("\n", $source) as $i => $raw) {
        $line = $i + 1;
        $text = rtrim($raw);
        if (!preg_match('~^\s*#\s*(\w+)\s*(.*)$~', $text, $m)) {
            if ($active) {
                $code = preg_replace('~//.*$~', '', $text) ?? $text;
                if (trim($code) !== '') {
                    $out[] = $code;
                }
            }
            continue;
        }
        [, $directive, $rest] = $m;
        $rest = trim(preg_replace('~//.*$~', '', $rest) ?? $rest);
        switch ($directive) {
            case 'if':
            case 'ifdef':
            case 'ifndef':
                $cond = match ($directive) {
                    'if' => $active ? evaluate($rest, $defines, $line) !== 0 : false,
                    'ifdef' => array_key_exists($rest, $defines) || array_key_exists($rest, C_ENV),
                    'ifndef' => !(array_key_exists($rest, $defines) || array_key_exists($rest, C_ENV)),
                };
                $stack[] = [$active && $cond, $active && $cond, $active];
                $active = $active && $cond;
                break;
            case 'elif':
            case 'else':
                if ($stack === []) {
                    throw new HeaderError("line $line: #$directive without #if");
                }
                [, $taken, $parent] = array_pop($stack);
                $cond = $directive === 'else' ? true : ($parent && !$taken && evaluate($rest, $defines, $line) !== 0);
                $now = $parent && !$taken && $cond;
                $stack[] = [$now, $taken || $now, $parent];
                $active = $now;
                break;
            case 'endif':
                if ($stack === []) {
                    throw new HeaderError("line $line: #endif without #if");
                }
                array_pop($stack);
                $active = $stack === [] ? true : $stack[count($stack) - 1][0];
                break;
            case 'define':
                if (!$active) {
                    break;
                }
                if (!preg_match('~^([A-Za-z_]\w*)(?:\s+(.*))?$~', $rest, $d)) {
                    throw new HeaderError("line $line: unsupported #define (function-like macros are not expected): $rest");
                }
                $value = isset($d[2]) ? trim($d[2]) : null;
                $defines[$d[1]] = $value;
                if ($value !== null && $value !== '') {
                    $numeric[$d[1]] = constant_literal($d[1], $value);
                }
                break;
            case 'include':
                if (!preg_match('~^<(stddef|stdint|stdbool)\.h>$~', $rest)) {
                    throw new HeaderError("line $line: unexpected #include $rest (FFI knows only the standard integer types)");
                }
                break;
            default:
                throw new HeaderError("line $line: unsupported directive #$directive");
        }
    }
    if ($stack !== []) {
        throw new HeaderError('unterminated #if at end of header');
    }
    $decls = implode("\n", $out) . "\n";
    // Collapse runs of blank space inside declarations into one line per statement, keeping
    // the text readable in error messages of FFI::cdef.
    $decls = preg_replace("~\n{2,}~", "\n", $decls) ?? $decls;
    return [$decls, $numeric];
}

/**
 * The enum constants of the declarations, by enum: ['kw_status' => ['KW_OK' => 0, ...]].
 *
 * @return array<string, array<string, int>>
 */
function enums(string $decls): array
{
    preg_match_all('~enum\s+(\w+)\s*\{(.*?)\}~s', $decls, $m, PREG_SET_ORDER);
    $enums = [];
    foreach ($m as [, $name, $body]) {
        foreach (array_filter(array_map('trim', explode(',', $body))) as $item) {
            if (!preg_match('~^(\w+)\s*=\s*(-?\d+)$~', $item, $c)) {
                throw new HeaderError("enum $name: every constant needs an explicit value, got '$item'");
            }
            $enums[$name][$c[1]] = (int) $c[2];
        }
    }
    return $enums;
}

/**
 * @param array<string, string> $numeric
 * @param array<string, array<string, int>> $enums
 */
function abi_class(array $numeric, array $enums): string
{
    $php = <<<'PHP'
        <?php

        // Generated by bin/generate-header.php from include/keyward.h. Do not edit: run
        // `php bin/generate-header.php` after the C header changes (a test fails until you do).

        declare(strict_types=1);

        namespace Keyward;

        /**
         * The constants of the C ABI (include/keyward.h), under their C names: the #define limits
         * and every enum value (statuses, reasons, flags...).
         */
        final class Abi
        {

        PHP;
    $php .= "    // #define constants\n";
    foreach ($numeric as $name => $literal) {
        $note = $name === 'KW_FLUSH_MANUAL' ? ' // UINT64_MAX: the same 64 bits as a PHP int' : '';
        $php .= "    public const $name = $literal;$note\n";
    }
    foreach ($enums as $enum => $constants) {
        $php .= "\n    // enum $enum\n";
        foreach ($constants as $name => $value) {
            $php .= "    public const $name = $value;\n";
        }
    }
    $php .= "}\n";
    return $php;
}

/**
 * @return array<string, string> relative path => content
 */
function generate(string $header): array
{
    $source = @file_get_contents($header);
    if ($source === false) {
        throw new HeaderError("cannot read $header");
    }
    [$decls, $numeric] = preprocess($source);
    $banner = "/* Generated by bin/generate-header.php from include/keyward.h: the declarations only\n"
        . "   (no preprocessor lines), for FFI. Do not edit. */\n";
    // FFI_LIB is the SONAME (libkeyward.so.<KW_ABI_VERSION>, see build.rs), which the dynamic
    // loader finds once the library is installed: the preload set-up names no install path.
    $abi = $numeric['KW_ABI_VERSION'] ?? throw new HeaderError('the header defines no KW_ABI_VERSION');
    $preload = "#define FFI_SCOPE \"KEYWARD\"\n#define FFI_LIB \"libkeyward.so.$abi\"\n";
    return [
        'keyward.h' => $banner . $decls,
        'keyward.preload.h' => $preload . $banner . $decls,
        'src/Abi.php' => abi_class($numeric, enums($decls)),
        // The optional extension is compiled against the header itself, byte for byte.
        'ext/keyward.h' => $source,
    ];
}

function main(array $argv): int
{
    $args = array_slice($argv, 1);
    $check = false;
    if (($args[0] ?? '') === '--check') {
        $check = true;
        array_shift($args);
    }
    $package = dirname(__DIR__);
    $header = $args[0] ?? $package . '/../../include/keyward.h';
    try {
        $files = generate($header);
    } catch (HeaderError $e) {
        fwrite(STDERR, "generate-header: {$e->getMessage()}\n");
        return 2;
    }
    $stale = [];
    foreach ($files as $rel => $content) {
        $path = "$package/$rel";
        if ($check) {
            if (@file_get_contents($path) !== $content) {
                $stale[] = $rel;
            }
        } elseif (@file_get_contents($path) !== $content) {
            file_put_contents($path, $content);
            echo "wrote $rel\n";
        }
    }
    if ($stale !== []) {
        fwrite(STDERR, 'out of date with ' . $header . ': ' . implode(', ', $stale)
            . "\nregenerate with: php bindings/php/bin/generate-header.php\n");
        return 1;
    }
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(main($argv));
}
