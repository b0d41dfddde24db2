<?php

declare(strict_types=1);

namespace Keyward\Exception;

use Keyward\Abi;
use Keyward\Library;

/**
 * Base class of every exception thrown by keyward. getCode() is the C ABI's kw_status
 * (an Abi::KW_* value; -1 for LibraryException, which has no status); getStatusName()
 * its stable name without the KW_ prefix, e.g. "NOT_FOUND".
 *
 * Use fromStatus() to get the subclass of a status family:
 *
 * | status                                              | class               |
 * |-----------------------------------------------------|---------------------|
 * | INVALID_ARGUMENT, NULL_ARGUMENT, INVALID_UTF8, TOO_LONG | ArgumentException |
 * | BUFFER_TOO_SMALL, PANIC (and unknown values)        | InternalException   |
 * | CLOSED                                              | ClosedException     |
 * | NOT_FOUND, OWNER_NOT_FOUND                          | NotFoundException   |
 * | POLICY_*                                            | PolicyException     |
 * | DIRECTORY_MISSING ... STORAGE, CREDIT_SLOTS_EXHAUSTED | StorageException  |
 * | CREDENTIAL_MISSING ... AMBIGUOUS_CREDENTIAL         | CredentialException |
 */
class KeywardException extends \RuntimeException
{
    private string $statusName;

    private string $detail;

    /**
     * @param int    $status     the kw_status value (-1 when there is none)
     * @param string $statusName its name without the KW_ prefix
     * @param string $message    full, human-readable message
     * @param string $detail     the library's cause of the failure (kw_last_error_message), or ""
     */
    public function __construct(int $status, string $statusName, string $message, ?\Throwable $previous = null, string $detail = '')
    {
        parent::__construct($message, $status, $previous);
        $this->statusName = $statusName;
        $this->detail = $detail;
    }

    /**
     * The library's own account of the failure (kw_last_error_message): which file, which
     * permission, what to do; "" when the status says it all. Also part of getMessage().
     */
    public function getDetail(): string
    {
        return $this->detail;
    }

    /** The kw_status value (same as getCode()). */
    public function getStatus(): int
    {
        return $this->getCode();
    }

    /** The status name without the KW_ prefix, e.g. "NOT_FOUND". */
    public function getStatusName(): string
    {
        return $this->statusName;
    }

    /**
     * The exception for a failed call: the class of the status's family, with a message
     * naming the operation, the library's message for the status, the status name and, when
     * the library gave one, the detailed cause.
     *
     * @param int    $status  a non-zero kw_status
     * @param string $name    kw_status_name() of it
     * @param string $message kw_status_message() of it
     * @param string $context what failed, e.g. "kw_get('3hZ0bq9XcV1mT7pK')"
     * @param string $detail  kw_last_error_message() after the call: the cause, or ""
     * @param ?int   $family  kw_status_family() of it (asked of the library when null)
     */
    public static function fromStatus(
        int $status,
        string $name,
        string $message,
        string $context,
        string $detail = '',
        ?int $family = null,
    ): self {
        // The class follows the family the library gives the code (kw_status_family, from its
        // one table of codes), so a code added later lands in the right class. Two codes have
        // a class of their own.
        $family ??= Library::ffi()->kw_status_family($status);
        $class = match (true) {
            $status === Abi::KW_CLOSED => ClosedException::class,
            $status === Abi::KW_BUFFER_TOO_SMALL => InternalException::class, // a binding bug
            $family === Abi::KW_FAMILY_ARGUMENT => ArgumentException::class,
            $family === Abi::KW_FAMILY_NOT_FOUND => NotFoundException::class,
            $family === Abi::KW_FAMILY_POLICY => PolicyException::class,
            $family === Abi::KW_FAMILY_STORAGE, $family === Abi::KW_FAMILY_PEPPER => StorageException::class,
            $family === Abi::KW_FAMILY_CREDENTIAL => CredentialException::class,
            $family === Abi::KW_FAMILY_UPSTREAM => UpstreamException::class,
            default => InternalException::class,
        };
        $text = $detail === '' ? "$context: $message (KW_$name)" : "$context: $message (KW_$name): $detail";
        return new $class($status, $name, $text, null, $detail);
    }
}
