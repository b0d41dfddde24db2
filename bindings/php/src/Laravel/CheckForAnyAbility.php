<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Keyward\Guard;

/**
 * Route middleware requiring ANY ONE of the listed abilities (keyward scopes), like Sanctum's
 * `ability:` middleware: `->middleware(['auth:keyward', 'ability:invoices:read,admin'])`
 * (also registered as `keyward.ability`). Same reuse of the request's verdict and the same
 * 401/403 answers as CheckAbilities; a key with none of them gets 403 INSUFFICIENT_SCOPE.
 */
class CheckForAnyAbility extends CheckAbilities
{
    protected function judge(array $accepted, array $abilities): array
    {
        if ($abilities === []) {
            return [$accepted['verdict'], $accepted];
        }
        $refused = null;
        foreach ($abilities as $ability) {
            $judged = Guard::reuse($accepted, $accepted['store'], [$ability]);
            if ($judged === null) {
                break;
            }
            if ($judged[0]->valid) {
                return $judged;
            }
            $refused = $judged;
            if ($judged[0]->httpStatus !== 403) { // the key is gone: no point trying others
                break;
            }
        }
        return $refused ?? [Responses::insufficientScope(), null];
    }
}
