import { afterEach, describe, expect, it } from "vitest";
import { setApiKey, withKey } from "./auth";
import { downloadUrl } from "./registry";

describe("the key in URLs a browser opens by itself", () => {
  afterEach(() => localStorage.clear());

  it("adds ?api_key= only when a key is stored", () => {
    expect(withKey("/x")).toBe("/x");
    expect(downloadUrl("bot", 2, "zip")).toBe("/v1/adapters/bot/versions/2/download?format=zip&artifact=adapter");
    setApiKey("sk-studio-a+b");
    expect(withKey("/x")).toBe("/x?api_key=sk-studio-a%2Bb");
    expect(downloadUrl("bot", 2, "zip")).toBe("/v1/adapters/bot/versions/2/download?format=zip&artifact=adapter&api_key=sk-studio-a%2Bb");
  });
});
