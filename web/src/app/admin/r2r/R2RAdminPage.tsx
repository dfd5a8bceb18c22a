"use client";

import "./r2r.css";
import { useState, type ReactNode } from "react";
import { Button, Loader, Notice, PageShell } from "./onyx";
import { ConnectionForm } from "./ConnectionForm";
import { ExportSettings } from "./ExportSettings";
import { StatusPanel } from "./StatusPanel";
import { DeadLetterTable } from "./DeadLetterTable";
import { ConfirmAction } from "./ConfirmAction";
import {
  r2rAdmin,
  useDeadLetterClasses,
  useDeadLetters,
  useR2RConfig,
  useR2RStatus,
  type R2RApiError,
} from "./api";
import type { ConfigView } from "./types";

const TITLE = "R2R Mirror";
const DESCRIPTION =
  "Mirror the documents Onyx indexes into an R2R server: connection, sync status, dead letters and maintenance.";
const DEAD_LETTER_PAGE = 10;

export interface R2RAdminPageProps {
  /** How often the status and dead letters refresh (ms). */
  refreshMs?: number;
}

function Section({
  title,
  description,
  children,
  id,
}: {
  title: string;
  description?: string;
  children: ReactNode;
  id: string;
}) {
  return (
    <section className="r2r-section" aria-labelledby={`${id}-title`}>
      <div className="r2r-section-head">
        <h2 className="r2r-section-title" id={`${id}-title`}>
          {title}
        </h2>
        {description && <p className="r2r-help">{description}</p>}
      </div>
      {children}
    </section>
  );
}

function ConnectionSummary({ config }: { config: ConfigView }) {
  if (config.source === "stored") {
    return (
      <div role="status">
        <Notice
          variant={config.encrypted ? "success" : "warning"}
          title={`Connected to ${config.base_url}`}
          description={
            config.encrypted
              ? `Stored for this workspace, encrypted at rest (${config.encryption.key_source}).`
              : "Stored WITHOUT encryption (development mode: ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS). Set ONYX_R2R_ENCRYPTION_KEY and run `onyx-r2r rotate-key`."
          }
        />
      </div>
    );
  }
  if (config.source === "environment") {
    return (
      <div role="status">
        <Notice
          variant="info"
          title={`Using the server from the environment (${config.environment.base_url})`}
          description="Nothing is stored for this workspace yet: workers use R2R_BASE_URL and R2R_API_KEY. Save a connection below to override them."
        />
      </div>
    );
  }
  return (
    <div role="status">
      <Notice
        variant="warning"
        title="Not connected yet"
        description="Enter your R2R server's URL and an API key, test the connection, then save it to start mirroring."
      />
    </div>
  );
}

function EncryptionWarning({ config }: { config: ConfigView }) {
  if (config.encryption.configured) return null;
  return (
    <div role="status">
      <Notice
        variant="warning"
        title="No encryption key configured"
        description={
          config.encryption.allow_unencrypted
            ? "Development mode: secrets are stored unencrypted. Set ONYX_R2R_ENCRYPTION_KEY (or ENCRYPTION_KEY_SECRET) before using real credentials."
            : "Saving a credential will be refused until the server has ONYX_R2R_ENCRYPTION_KEY (or Onyx's ENCRYPTION_KEY_SECRET) set."
        }
      />
    </div>
  );
}

function LoadError({ error, onRetry }: { error: R2RApiError; onRetry: () => void }) {
  if (error.isForbidden) {
    return (
      <div role="alert">
        <Notice
          variant="error"
          title="Admin access required"
          description="Only Onyx admins can manage the R2R mirror. Ask an admin for access, or sign in with an admin account."
        />
      </div>
    );
  }
  return (
    <div role="alert" className="r2r-stack">
      <Notice
        variant="error"
        title="Could not load the R2R settings"
        description={error.message}
      />
      <div>
        <Button kind="secondary" onClick={onRetry}>
          Try again
        </Button>
      </div>
    </div>
  );
}

export default function R2RAdminPage({ refreshMs = 5000 }: R2RAdminPageProps) {
  const { config, error, isLoading, mutateConfig } = useR2RConfig();
  const { status, error: statusError, isLoading: statusLoading, mutateStatus } =
    useR2RStatus(refreshMs);
  const [offset, setOffset] = useState(0);
  const dead = useDeadLetters(offset, DEAD_LETTER_PAGE, refreshMs);
  const { classes } = useDeadLetterClasses();

  if (!config) {
    return (
      <PageShell title={TITLE} description={DESCRIPTION}>
        {error ? (
          <LoadError error={error} onRetry={() => void mutateConfig()} />
        ) : (
          <Loader text={isLoading ? "Loading the R2R settings…" : undefined} />
        )}
      </PageShell>
    );
  }

  const refreshAll = async () => {
    await Promise.all([mutateStatus(), dead.mutateDeadLetters()]);
  };

  return (
    <PageShell title={TITLE} description={DESCRIPTION}>
      <div className="r2r-page">
        <Section
          id="r2r-connection"
          title="Connection"
          description="The R2R server this workspace mirrors into. The API key is write-only: it is tested, encrypted and never shown again."
        >
          <div className="r2r-stack">
            <ConnectionSummary config={config} />
            <EncryptionWarning config={config} />
            <ConnectionForm
              config={config}
              onSaved={async (saved) => {
                await mutateConfig(saved, { revalidate: false });
                await refreshAll();
              }}
            />
            {config.source === "stored" && (
              <ConfirmAction
                label="Remove stored connection"
                description="Forget this workspace's R2R connection and export setting; workers fall back to the environment's server."
                question="Remove the stored R2R connection?"
                confirmLabel="Remove"
                doneTitle="Connection removed"
                confirmKind="danger"
                action={async () => {
                  const result = await r2rAdmin.deleteConnection();
                  await mutateConfig();
                  return result.message;
                }}
              />
            )}
          </div>
        </Section>

        <Section
          id="r2r-export"
          title="Export"
          description="Whether Onyx sends its documents to R2R, and how."
        >
          <ExportSettings
            config={config}
            onChanged={async (changed) => {
              await mutateConfig(changed, { revalidate: false });
            }}
          />
        </Section>

        <Section
          id="r2r-status"
          title="Sync status"
          description="Documents per state in the mirror's ledger, lag, R2R health and recent activity."
        >
          <StatusPanel
            status={status}
            error={statusError}
            isLoading={statusLoading}
            onRetry={() => void mutateStatus()}
          />
        </Section>

        <Section
          id="r2r-dead-letters"
          title="Dead letters"
          description="Documents that could not be mirrored, with the reason. Fix the cause, then replay them."
        >
          <DeadLetterTable
            page={dead.page}
            classes={classes}
            error={dead.error}
            isLoading={dead.isLoading}
            onPage={setOffset}
            onReplayed={refreshAll}
          />
        </Section>

        <Section
          id="r2r-maintenance"
          title="Maintenance"
          description="Long jobs run in the background on the mirror's workers."
        >
          <div className="r2r-stack">
            <ConfirmAction
              label="Resync from Onyx"
              description="Walk all of Onyx's documents and queue the ones R2R lacks or holds in an old version."
              question="Start a full resync? It runs in the background and can take a while on large workspaces."
              confirmLabel="Start resync"
              doneTitle="Resync queued"
              action={async () => (await r2rAdmin.startJob("resync")).message}
            />
            <ConfirmAction
              label="Reconcile with R2R"
              description="Compare what R2R really holds with the ledger: delete orphans, re-create missing documents, repair collections."
              question="Start a reconciliation now?"
              confirmLabel="Start reconcile"
              doneTitle="Reconcile queued"
              action={async () => {
                const message = (await r2rAdmin.startJob("reconcile")).message;
                await mutateStatus();
                return message;
              }}
            />
          </div>
        </Section>
      </div>
    </PageShell>
  );
}
