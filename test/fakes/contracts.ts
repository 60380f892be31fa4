// Loads the providers' published OpenAPI contracts (once per process) and validates payloads against their schemas.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, Format, ValidateFunction } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";

export type JsonObject = Record<string, unknown>;

const CONTRACTS_DIR = new URL("../contracts/", import.meta.url);

export const CONTRACT_FILES = {
  assemblyAI: fileURLToPath(new URL("assemblyai-openapi.yml", CONTRACTS_DIR)),
  openAIYaml: fileURLToPath(new URL("openai-openapi.yaml", CONTRACTS_DIR)),
  /** The slice of the 3 MB OpenAI YAML the fakes need; parsing the YAML takes about a second. */
  openAIExtract: fileURLToPath(new URL("openai-schemas.json", CONTRACTS_DIR)),
} as const;

/** The OpenAI schemas the fakes speak; the extract holds these and everything they reference. */
export const OPENAI_SCHEMA_ROOTS = [
  "CreateChatCompletionRequest",
  "CreateChatCompletionResponse",
  "ErrorResponse",
  "Error",
] as const;

const SCHEMA_REF_PREFIX = "#/components/schemas/";

export interface Violation {
  /** JSON pointer of the offending value; for a missing property, the pointer it should have had. */
  path: string;
  keyword: string;
  message: string;
}

export interface Contract {
  readonly name: string;
  /** How `data` breaks `components.schemas[schemaName]`; empty when it conforms. */
  violations(schemaName: string, data: unknown): Violation[];
}

export interface LoadTiming {
  step: string;
  ms: number;
}

const loadTimings: LoadTiming[] = [];
const parsedFiles = new Map<string, JsonObject>();
const contracts = new Map<string, Contract>();

/** How long reading, parsing and compiling the contracts took in this process. */
export function contractLoadTimings(): readonly LoadTiming[] {
  return loadTimings;
}

export function assemblyAIContract(): Contract {
  return cachedContract("assemblyai", () => withMedicalMode(readSpecFile(CONTRACT_FILES.assemblyAI)));
}

const NULLABLE_STRING = { type: ["string", "null"] };

/**
 * Medical Mode (https://www.assemblyai.com/docs/pre-recorded-audio/medical-mode) is newer than
 * the published OpenAPI document: its request field and its answer are added here exactly as the
 * SDK the pipeline uses types them (assemblyai 4.41.5: `TranscriptOptionalParams.domain`,
 * `Transcript.domain`, `Transcript.metadata`), and nothing else is loosened.
 */
function withMedicalMode(spec: JsonObject): JsonObject {
  const schemas = componentSchemas(spec);
  const extend = (name: string, properties: JsonObject): JsonObject => {
    const schema = schemas[name];
    if (!isRecord(schema) || !isRecord(schema["properties"])) throw new Error(`schema ${name} has no properties to extend`);
    return { ...schema, properties: { ...schema["properties"], ...properties } };
  };
  const metadata = {
    type: ["object", "null"],
    additionalProperties: false,
    properties: {
      domain_used: NULLABLE_STRING,
      warning: NULLABLE_STRING,
      warnings: {
        type: ["array", "null"],
        items: { type: "object", additionalProperties: false, required: ["message"], properties: { message: { type: "string" } } },
      },
    },
  };
  const components = isRecord(spec["components"]) ? spec["components"] : {};
  return {
    ...spec,
    components: {
      ...components,
      schemas: {
        ...schemas,
        TranscriptOptionalParams: extend("TranscriptOptionalParams", { domain: NULLABLE_STRING }),
        Transcript: extend("Transcript", { domain: NULLABLE_STRING, metadata }),
      },
    },
  };
}

export function openAIContract(): Contract {
  return cachedContract("openai", () => readSpecFile(CONTRACT_FILES.openAIExtract));
}

/** Reads a YAML or JSON OpenAPI document once per process. */
export function readSpecFile(path: string): JsonObject {
  const cached = parsedFiles.get(path);
  if (cached !== undefined) return cached;
  const spec = timed(`parse ${path.split("/").pop() ?? path}`, () => {
    const text = readFileSync(path, "utf8");
    const parsed: unknown = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
    if (!isRecord(parsed)) throw new Error(`${path} is not an OpenAPI document`);
    return parsed;
  });
  parsedFiles.set(path, spec);
  return spec;
}

/** The OpenAPI document reduced to `roots` and every schema they reference, in the source's order. */
export function extractSchemas(spec: JsonObject, roots: readonly string[]): JsonObject {
  const all = componentSchemas(spec);
  const needed = new Set<string>();
  const visit = (name: string): void => {
    if (needed.has(name)) return;
    if (!(name in all)) throw new Error(`schema ${name} is not in the document`);
    needed.add(name);
    for (const ref of schemaRefsIn(all[name])) visit(ref);
  };
  roots.forEach(visit);
  const info = isRecord(spec["info"]) ? spec["info"] : {};
  return {
    $comment:
      "Generated by test/contracts/extract-openai-schemas.ts from openai-openapi.yaml (MIT License, see " +
      "openai-openapi.LICENSE): only the schemas the fakes use and what they reference. Do not edit.",
    openapi: spec["openapi"],
    info: { title: info["title"], version: info["version"] },
    components: { schemas: Object.fromEntries(Object.entries(all).filter(([name]) => needed.has(name))) },
  };
}

export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.path || "/"} ${v.message}`).join("; ");
}

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function cachedContract(name: string, loadSpec: () => JsonObject): Contract {
  let contract = contracts.get(name);
  if (contract === undefined) {
    contract = new OpenApiContract(name, loadSpec());
    contracts.set(name, contract);
  }
  return contract;
}

class OpenApiContract implements Contract {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(
    readonly name: string,
    spec: JsonObject,
  ) {
    const schemas = normalizeComponentSchemas(componentSchemas(spec));
    // Only components are registered, under the contract's name, so "#/components/schemas/X" refs resolve.
    const document = { components: { schemas } };
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, formats: formatsFor(document) });
    this.ajv.addSchema(document, name);
  }

  violations(schemaName: string, data: unknown): Violation[] {
    const validate = this.validator(schemaName);
    return validate(data) ? [] : toViolations(validate.errors ?? []);
  }

  private validator(schemaName: string): ValidateFunction {
    let validate = this.validators.get(schemaName);
    if (validate === undefined) {
      validate = timed(`compile ${this.name} ${schemaName}`, () => {
        const compiled = this.ajv.getSchema(`${this.name}${SCHEMA_REF_PREFIX}${schemaName}`);
        if (compiled === undefined) throw new Error(`${this.name} contract has no schema ${schemaName}`);
        return compiled;
      });
      this.validators.set(schemaName, validate);
    }
    return validate;
  }
}

function componentSchemas(spec: JsonObject): JsonObject {
  const components = spec["components"];
  const schemas = isRecord(components) ? components["schemas"] : undefined;
  if (!isRecord(schemas)) throw new Error("OpenAPI document has no components.schemas");
  return schemas;
}

function schemaRefsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(schemaRefsIn);
  if (!isRecord(value)) return [];
  return Object.entries(value).flatMap(([key, child]) =>
    key === "$ref" && typeof child === "string" && child.startsWith(SCHEMA_REF_PREFIX)
      ? [child.slice(SCHEMA_REF_PREFIX.length)]
      : schemaRefsIn(child),
  );
}

// --- OpenAPI → JSON Schema 2020-12 -------------------------------------------------------------
// Both documents say "OpenAPI 3.1" but keep OpenAPI 3.0 / code-generator idioms that a strict
// JSON Schema validator reads differently from what the providers mean. These rewrites keep the
// providers' meaning; everything else is validated exactly as published.

/** Keywords whose value is a map of subschemas, a list of subschemas, or one subschema. */
const SUBSCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
const SUBSCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
const SUBSCHEMAS = new Set([
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
  "unevaluatedItems",
  "unevaluatedProperties",
]);

function normalizeComponentSchemas(raw: JsonObject): JsonObject {
  const normalized = new Map<string, unknown>();
  const resolve = (ref: string): unknown => {
    if (!ref.startsWith(SCHEMA_REF_PREFIX)) return undefined;
    const name = ref.slice(SCHEMA_REF_PREFIX.length);
    if (!normalized.has(name)) normalized.set(name, normalizeSchema(raw[name], resolve));
    return normalized.get(name);
  };
  return Object.fromEntries(Object.keys(raw).map((name) => [name, resolve(SCHEMA_REF_PREFIX + name)]));
}

function normalizeSchema(schema: unknown, resolve: (ref: string) => unknown): unknown {
  if (!isRecord(schema)) return schema;
  const rewritten: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    rewritten[key] = normalizeKeywordValue(key, value, resolve);
  }
  return wrapNullable(flattenClosedAllOf(rewritten, resolve));
}

function normalizeKeywordValue(key: string, value: unknown, resolve: (ref: string) => unknown): unknown {
  if (SUBSCHEMA_MAPS.has(key) && isRecord(value)) {
    return Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, normalizeSchema(sub, resolve)]));
  }
  if (SUBSCHEMA_LISTS.has(key) && Array.isArray(value)) return value.map((sub) => normalizeSchema(sub, resolve));
  if (SUBSCHEMAS.has(key)) return normalizeSchema(value, resolve);
  return value;
}

/**
 * AssemblyAI's TranscriptParams is `allOf: [{audio_url}, TranscriptOptionalParams]` where every part says
 * `additionalProperties: false`. Read literally, no object can pass (each part forbids the other's
 * properties); its code generators read it as "one object with all these properties". So merge.
 */
function flattenClosedAllOf(schema: JsonObject, resolve: (ref: string) => unknown): JsonObject {
  const allOf: unknown = schema["allOf"];
  if (!Array.isArray(allOf)) return schema;
  const parts = (allOf as unknown[]).map((part) => (isRecord(part) && typeof part["$ref"] === "string" ? resolve(part["$ref"]) : part));
  const objectParts = parts.filter(isRecord);
  const closed = schema["additionalProperties"] === false || objectParts.some((p) => p["additionalProperties"] === false);
  if (!closed || objectParts.length !== parts.length || objectParts.some((p) => !isRecord(p["properties"]))) {
    return schema;
  }
  const rest = Object.fromEntries(Object.entries(schema).filter(([keyword]) => keyword !== "allOf"));
  const everyPart = [...objectParts, rest];
  return {
    ...rest,
    type: "object",
    properties: Object.fromEntries(everyPart.flatMap((p) => (isRecord(p["properties"]) ? Object.entries(p["properties"]) : []))),
    required: [...new Set(everyPart.flatMap((p) => (Array.isArray(p["required"]) ? (p["required"] as unknown[]) : [])))],
    additionalProperties: false,
  };
}

/** OpenAPI 3.0's `nullable: true` (kept in OpenAI's 3.1 document) means "or null"; 2020-12 ignores it. */
function wrapNullable(schema: JsonObject): JsonObject {
  if (!("nullable" in schema)) return schema;
  const { nullable, ...rest } = schema;
  return nullable === true ? { anyOf: [rest, { type: "null" }] } : rest;
}

/** Formats that assert something; the rest (float, double, unixtime, int64, …) are annotations. */
const CHECKED_FORMATS: Readonly<Record<string, (value: string) => boolean>> = {
  uuid: (value) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value),
  date: (value) => /^\d{4}-\d{2}-\d{2}$/.test(value),
  "date-time": (value) => /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value)),
  url: (value) => URL.canParse(value),
  uri: (value) => URL.canParse(value),
};

function formatsFor(document: unknown): Record<string, Format> {
  const formats: Record<string, Format> = {};
  for (const name of formatNamesIn(document)) formats[name] = CHECKED_FORMATS[name] ?? true;
  return formats;
}

function formatNamesIn(value: unknown): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (isRecord(node)) {
      if (typeof node["format"] === "string") names.add(node["format"]);
      Object.values(node).forEach(walk);
    }
  };
  walk(value);
  return names;
}

function toViolations(errors: readonly ErrorObject[]): Violation[] {
  const seen = new Set<string>();
  return errors.flatMap((error) => {
    const violation = toViolation(error);
    const key = `${violation.path} ${violation.message}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [violation];
  });
}

function toViolation(error: ErrorObject): Violation {
  const params: JsonObject = error.params;
  const missing = params["missingProperty"];
  const extra = params["additionalProperty"];
  const allowed = params["allowedValues"];
  const detail =
    typeof extra === "string" ? `: ${extra}` : Array.isArray(allowed) ? `: ${allowed.map(String).join(", ")}` : "";
  return {
    path: typeof missing === "string" ? `${error.instancePath}/${missing}` : error.instancePath,
    keyword: error.keyword,
    message: `${error.message ?? error.keyword}${detail}`,
  };
}

function timed<T>(step: string, work: () => T): T {
  const started = performance.now();
  const result = work();
  loadTimings.push({ step, ms: Math.round(performance.now() - started) });
  return result;
}
