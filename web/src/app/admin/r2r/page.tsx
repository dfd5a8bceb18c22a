"use client";

// Onyx admin page /admin/r2r (its sidebar entry is added to web/src/lib/admin-routes.ts by
// the patch in patches/). Everything Onyx-specific the page uses goes through ./onyx.
import R2RAdminPage from "./R2RAdminPage";

export default function Page() {
  return <R2RAdminPage />;
}
