import { expect, test } from "bun:test";
import { TableControl, TableSeqlock } from "./table-seqlock.ts";

test("a read that overlapped a change is not valid; begin/end are idempotent and hold() makes one change of several (issue 16)", () => {
  const control = TableSeqlock.newControl();
  const writer = new TableSeqlock(control);
  const reader = new TableSeqlock(control);
  const seq = reader.readBegin();
  expect(reader.readValid(seq)).toBe(true);
  writer.begin();
  writer.begin();
  expect(control[TableControl.seq]! & 1).toBe(1); // odd while a change is under way
  expect(reader.readValid(seq)).toBe(false);
  expect(writer.readValid(writer.readBegin())).toBe(true); // the writer reads its own change without waiting
  writer.end();
  writer.end();
  expect(control[TableControl.seq]).toBe(seq + 2);
  writer.hold();
  writer.begin();
  writer.end(); // held: still one change
  expect(control[TableControl.seq]! & 1).toBe(1);
  writer.release();
  expect(control[TableControl.seq]).toBe(seq + 4);
  expect(reader.readValid(reader.readBegin())).toBe(true);
});
