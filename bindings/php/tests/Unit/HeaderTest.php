<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Abi;
use Keyward\Library;
use PHPUnit\Framework\TestCase;

use function Keyward\Build\generate;

/**
 * The directive-free header copies (keyward.h for FFI::cdef, keyward.preload.h for
 * FFI::load) and src/Abi.php must be exactly what bin/generate-header.php makes of
 * include/keyward.h, and must describe the same memory layout as the C compiler sees.
 */
final class HeaderTest extends TestCase
{
    private const PACKAGE = __DIR__ . '/../..';

    private static function cHeader(): string
    {
        return dirname(__DIR__, 4) . '/include/keyward.h';
    }

    public static function setUpBeforeClass(): void
    {
        require_once self::PACKAGE . '/bin/generate-header.php';
    }

    public function testCopiesMatchTheCHeader(): void
    {
        $files = generate(self::cHeader());
        self::assertSame(['keyward.h', 'keyward.preload.h', 'src/Abi.php', 'ext/keyward.h'], array_keys($files));
        foreach ($files as $rel => $expected) {
            self::assertSame($expected, file_get_contents(self::PACKAGE . "/$rel"),
                "bindings/php/$rel is out of date with include/keyward.h: run php bindings/php/bin/generate-header.php");
        }
    }

    public function testTheCheckModeFailsOnAStaleCopy(): void
    {
        $header = (string) file_get_contents(self::cHeader());
        $dir = sys_get_temp_dir() . '/keyward-header-' . getmypid();
        @mkdir($dir);
        $changes = [
            'a new function' => str_replace('uint32_t kw_abi_version(void);', "uint32_t kw_abi_version(void);\nint kw_new_thing(void);", $header),
            'a changed constant' => str_replace('#define KW_MAX_KEY_LEN 88', '#define KW_MAX_KEY_LEN 90', $header),
            'a changed field' => str_replace('  uint32_t http_status;', '  uint64_t http_status;', $header),
        ];
        foreach ($changes as $what => $changed) {
            self::assertNotSame($header, $changed, "$what: the replacement must apply");
            file_put_contents("$dir/keyward.h", $changed);
            $output = [];
            exec(sprintf('%s %s --check %s 2>&1', PHP_BINARY, escapeshellarg(self::PACKAGE . '/bin/generate-header.php'),
                escapeshellarg("$dir/keyward.h")), $output, $status);
            self::assertSame(1, $status, "$what: --check must fail");
            self::assertStringContainsString('out of date', implode("\n", $output));
        }
        exec(sprintf('%s %s --check 2>&1', PHP_BINARY, escapeshellarg(self::PACKAGE . '/bin/generate-header.php')), $output, $status);
        self::assertSame(0, $status, '--check passes on the repository header: ' . implode("\n", $output));
        @unlink("$dir/keyward.h");
        @rmdir($dir);
    }

    public function testUnknownDirectivesStopTheGenerator(): void
    {
        $dir = sys_get_temp_dir() . '/keyward-header-' . getmypid();
        @mkdir($dir);
        foreach (["#pragma once\n", "#include <stdio.h>\n", "#define KW_F(x) (x)\n", "#if FOO(1)\n#endif\n", "#if 1\n"] as $bad) {
            file_put_contents("$dir/bad.h", $bad . (string) file_get_contents(self::cHeader()));
            try {
                generate("$dir/bad.h");
                self::fail('expected a HeaderError for ' . trim($bad));
            } catch (\Keyward\Build\HeaderError $e) {
                $this->addToAssertionCount(1);
            }
        }
        @unlink("$dir/bad.h");
        @rmdir($dir);
    }

    public function testCopiesHaveNoPreprocessorLinesAndLoad(): void
    {
        $decls = (string) file_get_contents(Library::headerPath());
        self::assertDoesNotMatchRegularExpression('/^\s*#/m', $decls);
        $preload = (string) file_get_contents(self::PACKAGE . '/keyward.preload.h');
        self::assertStringStartsWith("#define FFI_SCOPE \"KEYWARD\"\n#define FFI_LIB \"libkeyward.so." . Abi::KW_ABI_VERSION . "\"\n", $preload);
        self::assertStringEndsWith($decls, $preload);
        $ffi = \FFI::cdef($decls, Library::configuredPath()); // every declaration resolves
        self::assertSame(272, \FFI::sizeof($ffi->type('kw_verdict')), 'README.md (Use from C): a fixed 272-byte kw_verdict');
    }

    public function testLibcDeclarationsMatchTheirPreloadCopy(): void
    {
        $preload = (string) file_get_contents(self::PACKAGE . '/keyward-libc.preload.h');
        self::assertSame("#define FFI_SCOPE \"KEYWARD_LIBC\"\n" . Library::LIBC_DECLARATIONS . "\n", $preload);
    }

    public function testEnumConstantsAgreeWithTheLoadedDeclarations(): void
    {
        $ffi = Library::ffi();
        $constants = (new \ReflectionClass(Abi::class))->getConstants();
        $checked = 0;
        foreach ($constants as $name => $value) {
            try {
                $cValue = $ffi->$name; // enum constants are visible through FFI
            } catch (\FFI\Exception) {
                continue; // a #define: FFI does not see those
            }
            self::assertSame($value, $cValue, $name);
            $checked++;
        }
        self::assertGreaterThan(60, $checked);
        self::assertSame(Abi::KW_ABI_VERSION, $ffi->kw_abi_version());
    }

    /**
     * Sizes, alignments and field offsets of every struct, as FFI computes them from the copy
     * and as the C compiler computes them from include/keyward.h.
     */
    public function testStructLayoutMatchesTheCCompiler(): void
    {
        $cc = trim((string) shell_exec('command -v cc gcc 2>/dev/null | head -n 1'));
        if ($cc === '') {
            self::markTestSkipped('no C compiler (scripts/test-php.sh installs gcc)');
        }
        $decls = (string) file_get_contents(Library::headerPath());
        preg_match_all('/typedef struct (kw_\w+) \{(.*?)\} \1;/s', $decls, $structs, PREG_SET_ORDER);
        self::assertSame(substr_count($decls, "typedef struct "), count($structs), "every struct is checked");
        $ffi = Library::ffi();
        $program = "#include <stddef.h>\n#include <stdio.h>\n#include \"keyward.h\"\nint main(void) {\n";
        $expected = [];
        foreach ($structs as [, $name, $body]) {
            $program .= "  printf(\"$name %zu %zu\\n\", sizeof($name), _Alignof($name));\n";
            $type = $ffi->type($name);
            $expected[] = sprintf('%s %d %d', $name, \FFI::sizeof($type), \FFI::alignof($type));
            $value = $ffi->new($name);
            $size = \FFI::sizeof($value);
            $bytes = \FFI::cast('uint8_t *', \FFI::addr($value));
            preg_match_all('/(\w+)(?:\[\d+\])?;/', $body, $fields);
            foreach ($fields[1] as $field) {
                $program .= "  printf(\"$name.$field %zu\\n\", offsetof($name, $field));\n";
                // FFI has no offsetof: mark the field in a zeroed struct and find the first
                // marked byte (little-endian: an integer's low byte comes first).
                \FFI::memset(\FFI::addr($value), 0, $size);
                $current = $value->$field;
                if ($current instanceof \FFI\CData) {
                    \FFI::memset(\FFI::addr($value->$field), 0xff, \FFI::sizeof($value->$field)); // array or struct
                } elseif ($current === null) {
                    $value->$field = $ffi->cast('void *', 1); // pointer
                } else {
                    $value->$field = 1;
                }
                $offset = 0;
                while ($offset < $size && $bytes[$offset] === 0) {
                    $offset++;
                }
                $expected[] = "$name.$field $offset";
            }
        }
        $program .= "  return 0;\n}\n";
        $dir = sys_get_temp_dir() . '/keyward-layout-' . getmypid();
        @mkdir($dir);
        file_put_contents("$dir/layout.c", $program);
        exec(sprintf('%s -std=c11 -I %s -o %s %s 2>&1', $cc, escapeshellarg(dirname(self::cHeader())),
            escapeshellarg("$dir/layout"), escapeshellarg("$dir/layout.c")), $build, $status);
        self::assertSame(0, $status, implode("\n", $build));
        exec(escapeshellarg("$dir/layout"), $actual, $status);
        self::assertSame(0, $status);
        self::assertSame($expected, $actual);
        array_map('unlink', glob("$dir/*") ?: []);
        @rmdir($dir);
    }
}
