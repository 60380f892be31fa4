// Paged scans of the visits collection for the ops commands, with progress reports. The pages
// advance by document id or by a `createdAt` filter, never by a timestamp cursor alone, so ties
// and unreadable documents cannot stall a scan.

import { countVisits, listVisitsCreatedFrom, listVisitsInStatus } from "../store/visits.js";
import type { VisitPage } from "../store/visits.js";
import type { Visit } from "../visit/model.js";
import type { VisitStatus } from "../visit/status.js";

/** Told how far a scan has got; `total` is the count taken when it started. */
export type ScanProgress = (read: number, total: number) => void;

export interface ScanResult {
  visits: Visit[];
  /** Documents that do not match the data model (skipped, reported). */
  invalidIds: string[];
}

export const SCAN_PAGE_SIZE = 200;

/** Every visit in the given statuses. */
export async function scanStatuses(
  statuses: readonly VisitStatus[],
  options: { pageSize?: number; progress?: ScanProgress } = {},
): Promise<ScanResult> {
  const pageSize = options.pageSize ?? SCAN_PAGE_SIZE;
  const total = (await Promise.all(statuses.map((status) => countVisits({ status })))).reduce((a, b) => a + b, 0);
  const result: ScanResult = { visits: [], invalidIds: [] };
  let read = 0;
  for (const status of statuses) {
    let after: string | null = null;
    for (;;) {
      const page: VisitPage = await listVisitsInStatus(status, after, pageSize);
      collect(result, page);
      read += page.size;
      options.progress?.(read, total);
      if (page.size < pageSize || page.lastId === null) break;
      after = page.lastId;
    }
  }
  return result;
}

/** Every visit created at or after `since`, oldest first. */
export async function scanCreatedSince(since: Date, options: { pageSize?: number; progress?: ScanProgress } = {}): Promise<ScanResult> {
  const basePageSize = options.pageSize ?? SCAN_PAGE_SIZE;
  const total = await countVisits({ createdFrom: since });
  const result: ScanResult = { visits: [], invalidIds: [] };
  let from = since;
  let seenAtFrom = new Set<string>();
  let pageSize = basePageSize;
  let read = 0;
  for (;;) {
    const page = await listVisitsCreatedFrom(from, pageSize);
    const fresh = {
      visits: page.visits.filter((visit) => !seenAtFrom.has(visit.id)),
      invalidIds: page.invalidIds.filter((id) => !seenAtFrom.has(id)),
    };
    collect(result, fresh);
    read += fresh.visits.length + fresh.invalidIds.length;
    options.progress?.(Math.min(read, total), total);
    if (page.size < pageSize || page.lastCreatedAt === null) break;
    if (page.lastCreatedAt.getTime() === from.getTime()) {
      // A whole page created at one instant: read a wider page from the same instant.
      page.idsAtLastCreatedAt.forEach((id) => seenAtFrom.add(id));
      pageSize *= 2;
      continue;
    }
    from = page.lastCreatedAt;
    seenAtFrom = new Set(page.idsAtLastCreatedAt);
    pageSize = basePageSize;
  }
  return result;
}

function collect(result: ScanResult, page: { visits: Visit[]; invalidIds: string[] }): void {
  result.visits.push(...page.visits);
  result.invalidIds.push(...page.invalidIds);
}
