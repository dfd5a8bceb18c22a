/**
 * The harness's stand-in for `web/src/app/admin/r2r/onyx.tsx` (the page's only Onyx
 * module). Same exports and props, built from plain HTML styled like Onyx's admin pages
 * (`harness.css`). `src/shim-contract.ts` makes the type checker prove the two match.
 */

import type { ChangeEvent, FocusEvent, ReactNode } from "react";

export interface PageShellProps {
  title: string;
  description: string;
  children: ReactNode;
}

function ServerIcon() {
  return (
    <svg
      width="20"
      height="20"
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth="1.75"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
    >
      <rect x="3" y="3" width="18" height="7" rx="2" />
      <rect x="3" y="14" width="18" height="7" rx="2" />
      <line x1="7" y1="6.5" x2="7.01" y2="6.5" />
      <line x1="7" y1="17.5" x2="7.01" y2="17.5" />
    </svg>
  );
}

export function PageShell({ title, description, children }: PageShellProps) {
  return (
    <div className="shim-page">
      <div className="shim-page-inner">
        <header className="shim-header">
          <div className="shim-header-icon">
            <ServerIcon />
          </div>
          <h1 className="shim-title">{title}</h1>
          <p className="shim-description">{description}</p>
        </header>
        <hr className="shim-divider" />
        <main className="shim-body">{children}</main>
      </div>
    </div>
  );
}

export type ButtonKind = "primary" | "secondary" | "danger";

export interface ButtonProps {
  children: string;
  onClick?: () => void;
  kind?: ButtonKind;
  type?: "button" | "submit";
  disabled?: boolean;
  "aria-label"?: string;
}

export function Button({
  children,
  onClick,
  kind = "primary",
  type = "button",
  disabled,
  "aria-label": ariaLabel,
}: ButtonProps) {
  return (
    <button
      type={type}
      className="shim-btn"
      data-kind={kind}
      onClick={onClick}
      disabled={disabled}
      aria-label={ariaLabel}
    >
      {children}
    </button>
  );
}

export interface NoticeProps {
  variant: "info" | "success" | "warning" | "error";
  title: string;
  description?: string;
}

const NOTICE_GLYPH: Record<NoticeProps["variant"], string> = {
  info: "i",
  success: "✓",
  warning: "!",
  error: "×",
};

export function Notice({ variant, title, description }: NoticeProps) {
  return (
    <div className="shim-notice" data-variant={variant}>
      <span className="shim-notice-icon" aria-hidden="true">
        {NOTICE_GLYPH[variant]}
      </span>
      <div>
        <div className="shim-notice-title">{title}</div>
        {description && <div className="shim-notice-description">{description}</div>}
      </div>
    </div>
  );
}

export function Loader({ text }: { text?: string }) {
  return (
    <div className="shim-loader" role="status">
      <span className="shim-spinner" aria-hidden="true" />
      <span>{text ?? "Loading …"}</span>
    </div>
  );
}

export interface SwitchProps {
  id?: string;
  checked: boolean;
  onCheckedChange: (checked: boolean) => void;
  disabled?: boolean;
  "aria-labelledby"?: string;
}

export function Switch({ checked, onCheckedChange, ...props }: SwitchProps) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked}
      className="shim-switch"
      data-state={checked ? "checked" : "unchecked"}
      onClick={() => onCheckedChange(!checked)}
      {...props}
    >
      <span className="shim-switch-thumb" />
    </button>
  );
}

export interface TextInputProps {
  id: string;
  name: string;
  value: string;
  onChange: (event: ChangeEvent<HTMLInputElement>) => void;
  onBlur?: (event: FocusEvent<HTMLInputElement>) => void;
  placeholder?: string;
  type?: "text" | "url" | "email";
  invalid?: boolean;
  autoComplete?: string;
  "aria-describedby"?: string;
}

export function TextInput({ invalid, type = "text", ...props }: TextInputProps) {
  return (
    <input
      {...props}
      type={type}
      className="shim-input"
      data-invalid={invalid || undefined}
      aria-invalid={invalid || undefined}
    />
  );
}

export function SecretInput({ invalid, ...props }: Omit<TextInputProps, "type">) {
  return (
    <input
      {...props}
      type="password"
      className="shim-input"
      data-invalid={invalid || undefined}
      aria-invalid={invalid || undefined}
      spellCheck={false}
    />
  );
}
