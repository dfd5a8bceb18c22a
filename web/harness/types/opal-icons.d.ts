/** Type stub of the Opal icon used by web/src/app/admin/r2r/onyx.tsx. */
import type * as React from "react";

export declare const SvgServer: React.FunctionComponent<React.SVGProps<SVGSVGElement>>;
