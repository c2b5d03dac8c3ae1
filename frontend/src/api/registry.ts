// Models, estimates and the adapter registry, over the typed client.
import { withKey } from "./auth";
import { api, unwrap, type JobCreate } from "./client";
import type { components } from "./schema";

type Schemas = components["schemas"];
export type ModelObject = Schemas["ModelObject"];
export type Estimate = Schemas["EstimateObject"];
export type Memory = Schemas["MemoryObject"];
export type Adapter = Schemas["AdapterObject"];
export type AdapterVersion = Schemas["AdapterVersionObject"];

export const listModels = (signal?: AbortSignal) => unwrap(api.GET("/v1/models", { signal }));
export const getModel = (model: string, signal?: AbortSignal) =>
  unwrap(api.GET("/v1/models/{model}", { params: { path: { model } }, signal }));
export const estimateJob = (body: Partial<JobCreate>, signal?: AbortSignal) =>
  unwrap(api.POST("/v1/estimate", { body: body as JobCreate, signal }));

export const listAdapters = (signal?: AbortSignal) =>
  unwrap(api.GET("/v1/adapters", { params: { query: { limit: 100 } }, signal }));
export const getAdapter = (name: string, signal?: AbortSignal) =>
  unwrap(api.GET("/v1/adapters/{name}", { params: { path: { name } }, signal }));
export const getAdapterVersion = (name: string, version: number, signal?: AbortSignal) =>
  unwrap(api.GET("/v1/adapters/{name}/versions/{version}", { params: { path: { name, version } }, signal }));
export const setAlias = (name: string, alias: string, version: number) =>
  unwrap(api.PUT("/v1/adapters/{name}/aliases/{alias}", { params: { path: { name, alias } }, body: { version } }));
export const mergeVersion = (name: string, version: number) =>
  unwrap(api.POST("/v1/adapters/{name}/versions/{version}/merge", { params: { path: { name, version } } }));
export const deleteAdapter = (name: string) => unwrap(api.DELETE("/v1/adapters/{name}", { params: { path: { name } } }));
export const deleteAdapterVersion = (name: string, version: number) =>
  unwrap(api.DELETE("/v1/adapters/{name}/versions/{version}", { params: { path: { name, version } } }));

const enc = encodeURIComponent;
/** A plain link (the browser downloads the streamed archive itself, so the key rides in the URL). */
export const downloadUrl = (name: string, version: number, format: "tar.gz" | "zip" = "tar.gz", artifact: "adapter" | "merged" = "adapter") =>
  withKey(`/v1/adapters/${enc(name)}/versions/${version}/download?format=${format}&artifact=${artifact}`);
