/**
 * Type-level proof that the harness shim implements the page's Onyx module: every export of
 * web/src/app/admin/r2r/onyx.tsx exists here with a compatible type (checked by `tsc`).
 */
import type * as OnyxModule from "../../src/app/admin/r2r/onyx";
import * as Shim from "./onyx-shim";

type Exports<T> = { [K in keyof T]: T[K] };

export const shimImplementsOnyxModule: Exports<typeof OnyxModule> = Shim;
