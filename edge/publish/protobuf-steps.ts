/**
 * protobuf-es's `fromBinary` and `fromJson`, pausing (`Steps`) between the elements of a
 * message's repeated message fields, and of theirs `depth` levels down: decoding a request of a
 * megabyte at once holds the event loop for some 10 ms; element by element, for the time of its
 * largest element. The result is the message either function makes: everything but those lists
 * is decoded by them, from what is left when the lists' elements are taken out.
 */
import {
  fromBinary,
  fromJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { Steps } from "../../shared/cooperative.ts";

/** What both decoders take: unknown fields are ignored, nesting is bounded. */
export interface StepsOptions {
  /** Levels of repeated message fields decoded element by element. */
  readonly depth: number;
  /** protobuf-es's own `recursionLimit`, counted from the top message. */
  readonly recursionLimit: number;
}

type ListField = Extract<DescField, { readonly fieldKind: "list"; readonly listKind: "message" }>;

/** A binary message, as `fromBinary(schema, bytes, { readUnknownFields: false, … })`. */
export function* fromBinaryInSteps<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  options: StepsOptions,
): Steps<MessageShape<Desc>> {
  const reader = new BinaryReader(bytes);
  const rest: Uint8Array[] = [];
  const lists = new Map<ListField, unknown[]>();
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [number, wireType] = reader.tag();
    const field = options.depth > 0 ? messageList(schema, (f) => f.number === number) : undefined;
    if (field !== undefined && wireType === WireType.LengthDelimited) {
      const element = yield* fromBinaryInSteps(field.message, reader.bytes(), deeper(options));
      listOf(lists, field).push(element);
      yield;
      continue;
    }
    reader.skip(wireType, number);
    rest.push(bytes.subarray(start, reader.pos));
  }
  const message = fromBinary(schema, Buffer.concat(rest), {
    readUnknownFields: false,
    recursionLimit: options.recursionLimit,
  });
  return withLists(message, lists);
}

/** A message in protobuf's JSON mapping, as `fromJson(schema, json, { ignoreUnknownFields: true, … })`. */
export function* fromJsonInSteps<Desc extends DescMessage>(
  schema: Desc,
  json: JsonValue,
  options: StepsOptions,
): Steps<MessageShape<Desc>> {
  const lists = new Map<ListField, unknown[]>();
  let rest: JsonValue = json;
  if (options.depth > 0 && isObject(json)) {
    const kept: JsonObject = {};
    for (const [key, value] of Object.entries(json)) {
      const field = messageList(schema, (f) => f.jsonName === key || f.name === key);
      const otherName = field?.jsonName === key ? field.name : field?.jsonName;
      // A list under both of its names is left whole, for fromJson to judge.
      const twice = otherName !== undefined && otherName !== key && Object.hasOwn(json, otherName);
      if (field === undefined || !Array.isArray(value) || twice) {
        kept[key] = value;
        continue;
      }
      const elements = listOf(lists, field);
      for (const element of value) {
        elements.push(yield* fromJsonInSteps(field.message, element, deeper(options)));
        yield;
      }
    }
    rest = kept;
  }
  const message = fromJson(schema, rest, {
    ignoreUnknownFields: true,
    recursionLimit: options.recursionLimit,
  });
  return withLists(message, lists);
}

function messageList(
  schema: DescMessage,
  matches: (field: DescField) => boolean,
): ListField | undefined {
  const field = schema.fields.find(matches);
  return field?.fieldKind === "list" && field.listKind === "message" ? field : undefined;
}

function deeper(options: StepsOptions): StepsOptions {
  return { depth: options.depth - 1, recursionLimit: options.recursionLimit - 1 };
}

function listOf(lists: Map<ListField, unknown[]>, field: ListField): unknown[] {
  let list = lists.get(field);
  if (list === undefined) {
    list = [];
    lists.set(field, list);
  }
  return list;
}

function withLists<M>(message: M, lists: ReadonlyMap<ListField, unknown[]>): M {
  for (const [field, elements] of lists) {
    (message as Record<string, unknown>)[field.localName] = elements;
  }
  return message;
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
