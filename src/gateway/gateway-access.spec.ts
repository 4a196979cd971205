import {
  bulkJobOf,
  isBulkJobPath,
  isExportKickOff,
  isRead,
  refuseAccess,
  resourceTypesOf,
} from './gateway-access';

const request = (method: string, path: string, query = '') => ({
  method,
  segments: path === '' ? [] : path.split('/'),
  params: new URLSearchParams(query),
});

describe('gateway access rules', () => {
  const read = { access: 'read' as const, resourceTypes: null };
  const readWrite = { access: 'read_write' as const, resourceTypes: null };

  it('counts GET, HEAD and a form-encoded _search as reads, every other method as a write', () => {
    expect(isRead('GET', ['Patient', '1'])).toBe(true);
    expect(isRead('HEAD', ['Patient', '1'])).toBe(true);
    expect(isRead('POST', ['Patient', '_search'])).toBe(true);
    expect(isRead('POST', ['_search'])).toBe(true);
    expect(isRead('POST', ['Patient', '1', 'Observation', '_search'])).toBe(true);
    expect(isRead('POST', ['Patient'])).toBe(false);
    expect(isRead('POST', [])).toBe(false); // batch or transaction
    expect(isRead('POST', ['Patient', '$match'])).toBe(false);
    expect(isRead('PUT', ['Patient', '1'])).toBe(false);
    expect(isRead('PATCH', ['Patient', '1'])).toBe(false);
    expect(isRead('DELETE', ['Patient', '1'])).toBe(false);
  });

  it('lets a read key read and search, and refuses its writes with 403', () => {
    for (const [method, path] of [
      ['GET', 'Patient/1'],
      ['GET', 'Patient/1/_history/2'],
      ['GET', 'Patient'],
      ['HEAD', 'Patient/1'],
      ['POST', 'Patient/_search'],
      ['GET', 'metadata'],
    ]) {
      expect(refuseAccess(read, request(method, path))).toBeNull();
    }
    for (const [method, path] of [
      ['POST', 'Patient'],
      ['PUT', 'Patient/1'],
      ['PATCH', 'Patient/1'],
      ['DELETE', 'Patient/1'],
      ['POST', ''],
    ]) {
      expect(refuseAccess(read, request(method, path))).toMatchObject({
        kind: 'forbidden',
        message: expect.stringContaining('read_write') as string,
      });
      expect(refuseAccess(readWrite, request(method, path))).toBeNull();
    }
  });

  it('refuses methods outside the FHIR RESTful API', () => {
    for (const method of ['OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND']) {
      expect(refuseAccess(readWrite, request(method, 'Patient'))).toMatchObject({ kind: 'method' });
    }
  });

  describe('with a resource-type allow-list', () => {
    const limited = { access: 'read_write' as const, resourceTypes: ['Patient', 'Observation'] };

    it('checks the type of the path, and always allows metadata', () => {
      expect(refuseAccess(limited, request('GET', 'Patient/1'))).toBeNull();
      expect(refuseAccess(limited, request('GET', 'Observation', 'patient=1'))).toBeNull();
      expect(refuseAccess(limited, request('PUT', 'Observation/1'))).toBeNull();
      expect(refuseAccess(limited, request('GET', 'metadata'))).toBeNull();
      expect(refuseAccess(limited, request('GET', 'Encounter/1'))).toMatchObject({
        kind: 'forbidden',
        message: expect.stringContaining('Encounter') as string,
      });
      expect(refuseAccess(limited, request('POST', 'Encounter/_search'))).toMatchObject({
        kind: 'forbidden',
      });
    });

    it('refuses what may touch every type: the base, whole-system search and history, operations', () => {
      for (const [method, path, query] of [
        ['POST', '', ''],
        ['GET', '', '_getpages=abc'],
        ['GET', '_history', ''],
        ['POST', '_search', ''],
        ['GET', '', '_type=Patient'],
        ['GET', 'Patient/1/$everything', ''],
        ['POST', '$export', ''],
      ]) {
        expect(refuseAccess(limited, request(method, path, query))).toMatchObject({ kind: 'forbidden' });
      }
    });

    it('follows a paging link at the base only when the gateway gave it to this key', () => {
      const link = request('GET', '', '_getpages=abc&_getpagesoffset=10&_count=10');
      expect(refuseAccess(limited, link)).toMatchObject({
        kind: 'forbidden',
        message: expect.stringContaining('Repeat the search') as string,
      });
      expect(refuseAccess(limited, { ...link, knownPagingLink: true })).toBeNull();
      // Anything more than paging parameters is a request at the base like any other.
      const more = request('GET', '', '_getpages=abc&_type=Encounter');
      expect(refuseAccess(limited, { ...more, knownPagingLink: true })).toMatchObject({
        kind: 'forbidden',
        message: expect.stringContaining('may touch any type') as string,
      });
      const posted = request('POST', '', '_getpages=abc');
      expect(refuseAccess(limited, { ...posted, knownPagingLink: true })).toMatchObject({
        kind: 'forbidden',
      });
    });

    it('checks the type a compartment search returns', () => {
      expect(refuseAccess(limited, request('GET', 'Patient/1/Observation'))).toBeNull();
      expect(refuseAccess(limited, request('GET', 'Patient/1/Encounter'))).toMatchObject({
        kind: 'forbidden',
      });
    });

    it('checks the types _include and _revinclude add to the answer', () => {
      expect(
        resourceTypesOf(['Observation'], new URLSearchParams('_include=Observation:patient:Patient')),
      ).toEqual(['Observation', 'Patient']);
      expect(
        refuseAccess(limited, request('GET', 'Observation', '_include=Observation:patient:Patient')),
      ).toBeNull();
      expect(refuseAccess(limited, request('GET', 'Patient', '_revinclude=Encounter:patient'))).toMatchObject(
        { kind: 'forbidden', message: expect.stringContaining('Encounter') as string },
      );
      // Without a target type the answer may hold any type the parameter refers to.
      expect(
        refuseAccess(limited, request('GET', 'Observation', '_include=Observation:patient')),
      ).toMatchObject({ kind: 'forbidden' });
      expect(refuseAccess(limited, request('GET', 'Observation', '_include=*'))).toMatchObject({
        kind: 'forbidden',
      });
      expect(
        refuseAccess(limited, request('GET', 'Observation', '_include:iterate=Observation:subject:Group')),
      ).toMatchObject({ kind: 'forbidden' });
    });

    it('applies the same rules to a read key', () => {
      const readLimited = { access: 'read' as const, resourceTypes: ['Patient'] };
      expect(refuseAccess(readLimited, request('GET', 'Patient/1'))).toBeNull();
      expect(refuseAccess(readLimited, request('GET', 'Observation/1'))).toMatchObject({ kind: 'forbidden' });
      expect(refuseAccess(readLimited, request('PUT', 'Patient/1'))).toMatchObject({ kind: 'forbidden' });
    });
  });
});

describe('gateway access rules: Bulk Data (src/gateway/README.md, "Bulk Data")', () => {
  const read = { access: 'read' as const, resourceTypes: null };
  const limited = { access: 'read' as const, resourceTypes: ['Patient', 'Observation'] };

  it('knows the kick-offs and the job URLs', () => {
    expect(isExportKickOff(['$export'])).toBe(true);
    expect(isExportKickOff(['Patient', '$export'])).toBe(true);
    expect(isExportKickOff(['Group', 'g1', '$export'])).toBe(true);
    expect(isExportKickOff(['Patient', '1', '$export'])).toBe(false);
    expect(isExportKickOff(['Observation', '$export'])).toBe(false);
    expect(isBulkJobPath(['BulkRequest', 'job'])).toBe(true);
    expect(isBulkJobPath(['BulkRequest', 'job', 'file.ndjson'])).toBe(true);
    expect(isBulkJobPath(['$export-poll-status'])).toBe(true);
    expect(isBulkJobPath(['BulkRequest'])).toBe(false);
  });

  it('names the job of a status URL or file: the status path the gateway recorded at the kick-off', () => {
    const none = new URLSearchParams();
    expect(bulkJobOf(['BulkRequest', 'job-1'], none)).toBe('BulkRequest/job-1');
    expect(bulkJobOf(['BulkRequest', 'job-1', 'Patient-1.ndjson'], none)).toBe('BulkRequest/job-1');
    expect(bulkJobOf(['$export-poll-status'], new URLSearchParams('_jobId=abc'))).toBe(
      '$export-poll-status?_jobId=abc',
    );
    // No job, or an ambiguous one: nothing the gateway could have recorded.
    expect(bulkJobOf(['$export-poll-status'], none)).toBeNull();
    expect(bulkJobOf(['$export-poll-status'], new URLSearchParams('_jobId=a&_jobId=b'))).toBeNull();
    expect(bulkJobOf(['Patient', '1'], none)).toBeNull();
    expect(bulkJobOf(['BulkRequest'], none)).toBeNull();
  });

  it('lets a read key kick off, poll, download and cancel; other writes on job URLs need read_write', () => {
    for (const [method, path] of [
      ['GET', 'Patient/$export'],
      ['GET', 'Group/g1/$export'],
      ['GET', 'BulkRequest/job'],
      ['GET', 'BulkRequest/job/Patient-1.ndjson'],
      ['DELETE', 'BulkRequest/job'],
      ['DELETE', '$export-poll-status'],
    ]) {
      expect(refuseAccess(read, request(method, path))).toBeNull();
    }
    expect(refuseAccess(read, request('DELETE', 'BulkRequest/job/Patient-1.ndjson'))).toMatchObject({
      kind: 'forbidden',
    });
    expect(refuseAccess(read, request('POST', 'Patient/$export'))).toMatchObject({ kind: 'forbidden' });
  });

  it('counts the types _type names (and _typeFilter filters) as touched, all without _type', () => {
    expect(resourceTypesOf(['Patient', '$export'], new URLSearchParams('_type=Patient,Observation'))).toEqual(
      ['Patient', 'Observation'],
    );
    expect(
      resourceTypesOf(
        ['Group', 'g1', '$export'],
        new URLSearchParams('_type=Patient&_type=Observation&_typeFilter=Encounter%3Fstatus%3Dfinished'),
      ),
    ).toEqual(['Patient', 'Observation', 'Encounter']);
    expect(resourceTypesOf(['Patient', '$export'], new URLSearchParams(''))).toBe('all');
    expect(resourceTypesOf(['BulkRequest', 'job'], new URLSearchParams(''))).toEqual([]);
  });

  it('lets an allow-listed key export only its types, and refuses a $export without _type', () => {
    const ok = request('GET', 'Patient/$export', '_type=Observation,Patient');
    expect(refuseAccess(limited, ok)).toBeNull();
    expect(refuseAccess(limited, request('GET', 'Group/g1/$export', '_type=Observation'))).toBeNull();
    expect(refuseAccess(limited, request('GET', 'Patient/$export', '_type=Patient,Encounter'))).toMatchObject(
      {
        kind: 'forbidden',
        message: expect.stringContaining('Encounter') as string,
      },
    );
    expect(
      refuseAccess(
        limited,
        request('GET', 'Patient/$export', '_type=Patient&_typeFilter=Encounter%3Fstatus%3Dx'),
      ),
    ).toMatchObject({ kind: 'forbidden' });
    expect(refuseAccess(limited, request('GET', 'Patient/$export'))).toMatchObject({
      kind: 'forbidden',
      message: expect.stringContaining('$export without _type') as string,
    });
    // A kick-off by POST carries _type in its body: refused for an allow-listed key, whatever the query.
    const writer = { ...limited, access: 'read_write' as const };
    expect(refuseAccess(writer, request('POST', 'Patient/$export', '_type=Patient'))).toMatchObject({
      kind: 'forbidden',
    });
    expect(refuseAccess(limited, request('GET', 'BulkRequest/job'))).toBeNull();
    expect(refuseAccess(limited, request('GET', 'BulkRequest/job/Encounter-1.ndjson'))).toBeNull();
  });
});
