<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * The request's credential headers cannot be read (KW_CREDENTIAL_MISSING,
 * KW_UNSUPPORTED_SCHEME, KW_BAD_BASE64, KW_HALF_PAIR, KW_MALFORMED_KEY,
 * KW_AMBIGUOUS_CREDENTIAL): the client's fault, HTTP 401.
 */
class CredentialException extends KeywardException
{
}
