import { randomUUID } from 'node:crypto';

import type { FhirResource } from './fhir-data';

/** One version of a resource; a delete is a version without a resource (FHIR R4 §3.1.0.7). */
export interface StoredVersion {
  versionId: string;
  lastUpdated: string;
  /** What made it: POST (create), PUT or PATCH (update), DELETE. */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  resource?: FhirResource;
}

/** Seeded resources without a `meta` get this one, so that every read has a version and a date. */
const SEED_UPDATED = '2025-01-15T10:00:00Z';

/**
 * The fake's FHIR data, versioned as FHIR R4 §3.1.0 asks: every write makes a new `meta.versionId`
 * and `meta.lastUpdated`, old versions stay readable (vread, history), a delete leaves a version
 * without a resource (a read then answers 410).
 */
export class FhirStore {
  private readonly versions = new Map<string, StoredVersion[]>();

  constructor(
    seed: FhirResource[],
    private readonly now: () => number,
  ) {
    for (const resource of seed) this.put(resource);
  }

  /** Adds or replaces a resource as given (a test's or the seed's); its meta is kept, or made. */
  put(resource: FhirResource): void {
    const key = `${resource.resourceType}/${resource.id}`;
    const meta = (resource.meta ?? {}) as { versionId?: string; lastUpdated?: string };
    const list = this.versions.get(key) ?? [];
    const versionId = meta.versionId ?? String(list.length + 1);
    const lastUpdated = meta.lastUpdated ?? (list.length === 0 ? SEED_UPDATED : this.isoNow());
    const stored = structuredClone({ ...resource, meta: { ...meta, versionId, lastUpdated } });
    list.push({ versionId, lastUpdated, method: list.length === 0 ? 'POST' : 'PUT', resource: stored });
    this.versions.set(key, list);
  }

  /** The current version: the resource, `deleted`, or undefined when it never existed. */
  current(type: string, id: string): StoredVersion | undefined {
    const found = this.versions.get(`${type}/${id}`)?.at(-1);
    return found && structuredClone(found);
  }

  get(type: string, id: string): FhirResource | undefined {
    return this.current(type, id)?.resource;
  }

  version(type: string, id: string, versionId: string): StoredVersion | undefined {
    const found = this.versions.get(`${type}/${id}`)?.find((v) => v.versionId === versionId);
    return found && structuredClone(found);
  }

  /** Every version of one resource, or of every resource of a type, newest first. */
  history(type: string, id?: string): { type: string; id: string; version: StoredVersion }[] {
    const out: { type: string; id: string; version: StoredVersion }[] = [];
    for (const [key, list] of this.versions) {
      const [t, i] = key.split('/');
      if (t !== type || (id !== undefined && i !== id)) continue;
      for (const version of list) out.push({ type: t, id: i, version: structuredClone(version) });
    }
    return out.sort(
      (a, b) =>
        b.version.lastUpdated.localeCompare(a.version.lastUpdated) ||
        Number(b.version.versionId) - Number(a.version.versionId),
    );
  }

  /** The live resources of a type. */
  all(type: string): FhirResource[] {
    const out: FhirResource[] = [];
    for (const list of this.versions.values()) {
      const resource = list.at(-1)?.resource;
      if (resource?.resourceType === type) out.push(structuredClone(resource));
    }
    return out;
  }

  /** A new resource with a server-assigned id (the client's id is ignored: FHIR R4 §3.1.0.8.1). */
  create(resource: FhirResource): StoredVersion {
    return this.write(resource.resourceType, randomUUID(), resource, 'POST');
  }

  /** A new version of `type/id` (created when absent). */
  update(type: string, id: string, resource: FhirResource, method: 'PUT' | 'PATCH'): StoredVersion {
    return this.write(type, id, resource, method);
  }

  /** Deletes `type/id`: a version without a resource. False when it was not there. */
  delete(type: string, id: string): boolean {
    const list = this.versions.get(`${type}/${id}`);
    if (!list?.at(-1)?.resource) return false;
    list.push({ versionId: String(list.length + 1), lastUpdated: this.isoNow(), method: 'DELETE' });
    return true;
  }

  private write(
    type: string,
    id: string,
    resource: FhirResource,
    method: StoredVersion['method'],
  ): StoredVersion {
    const key = `${type}/${id}`;
    const list = this.versions.get(key) ?? [];
    const versionId = String(list.length + 1);
    const lastUpdated = this.isoNow();
    const meta = { ...((resource.meta as object | undefined) ?? {}), versionId, lastUpdated };
    const version: StoredVersion = {
      versionId,
      lastUpdated,
      method,
      resource: structuredClone({ ...resource, id, meta }),
    };
    list.push(version);
    this.versions.set(key, list);
    return structuredClone(version);
  }

  /** Whole seconds: Last-Modified has no finer unit, so If-Modified-Since compares alike. */
  private isoNow(): string {
    return new Date(Math.floor(this.now() / 1000) * 1000).toISOString();
  }
}
