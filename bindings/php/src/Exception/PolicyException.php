<?php

declare(strict_types=1);

namespace Keyward\Exception;

/**
 * A store policy refused the change (KW_POLICY_MAX_ACTIVE_KEYS, KW_POLICY_LAST_ACTIVE_KEY,
 * KW_POLICY_MAX_LIFETIME).
 */
class PolicyException extends KeywardException
{
}
