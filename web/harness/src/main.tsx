import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import R2RAdminPage from "@page/R2RAdminPage";
import "./harness.css";

// ?refresh=2000 makes the status refresh faster (the e2e test uses it)
const refresh = Number(new URLSearchParams(window.location.search).get("refresh"));

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <R2RAdminPage refreshMs={refresh > 0 ? refresh : 5000} />
  </StrictMode>
);
