import { CreateFoundationSchema1763890000000 } from './1763890000000-CreateFoundationSchema';

/** Every migration, oldest first. Listed explicitly so the app, the CLI and Jest load the same set. */
export const MIGRATIONS = [CreateFoundationSchema1763890000000];
