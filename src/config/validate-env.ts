import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync } from 'class-validator';

import { EnvSchema } from './env.schema';

/** Thrown at boot when the environment is invalid; the message names keys and rules, never values. */
export class InvalidEnvironmentError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment: ${problems.join('; ')}`);
    this.name = 'InvalidEnvironmentError';
  }
}

/** The variable names EnvSchema declares (read from its validation metadata). */
export const ENV_KEYS: ReadonlySet<string> = new Set(
  getMetadataStorage()
    .getTargetValidationMetadatas(EnvSchema, '', true, false)
    .map((m) => m.propertyName),
);

/**
 * Parses and validates the environment once, at boot. Only EnvSchema's keys are read, so the
 * result carries no stray variables; empty strings count as unset.
 */
export function validateEnv(raw: Record<string, unknown>): EnvSchema {
  const input: Record<string, unknown> = {};
  for (const key of ENV_KEYS) {
    const value = raw[key];
    if (value !== '' && value !== undefined) input[key] = value;
  }
  const env = plainToInstance(EnvSchema, input, {
    enableImplicitConversion: true,
    exposeDefaultValues: true,
  });
  // Constraint messages name the key and the rule; class-validator only includes a value when a
  // message asks for $value, and none of ours do.
  const problems = validateSync(env, { forbidUnknownValues: false }).map(
    (e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`,
  );
  if (env.NODE_ENV === 'production' && !env.PUBLIC_BASE_URL?.startsWith('https://')) {
    problems.push('PUBLIC_BASE_URL: required in production, and must use https');
  }
  if (problems.length > 0) throw new InvalidEnvironmentError(problems);
  return env;
}
