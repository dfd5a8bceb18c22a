"use client";

/**
 * The ONE module of the R2R admin page that imports Onyx (Opal design system). Every other
 * file of this page imports only React, SWR, Formik, Yup and this module, so the page also
 * renders outside Onyx: the standalone harness (`web/harness`) aliases this file to
 * `web/harness/src/onyx-shim.tsx`, which implements the same small interface.
 *
 * Keep the interface narrow: page shell, button, notice, loader, switch, text inputs.
 */

import type { ChangeEvent, FocusEvent, ReactNode } from "react";
import {
  Button as OpalButton,
  InputTypeIn,
  MessageCard,
  PasswordInputTypeIn,
  Switch as OpalSwitch,
} from "@opal/components";
import { PageLoader, SettingsLayouts } from "@opal/layouts";
import { SvgServer } from "@opal/icons";

export interface PageShellProps {
  title: string;
  description: string;
  children: ReactNode;
}

export function PageShell({ title, description, children }: PageShellProps) {
  return (
    <SettingsLayouts.Root width="lg">
      <SettingsLayouts.Header
        icon={SvgServer}
        title={title}
        description={description}
        divider
      />
      <SettingsLayouts.Body>{children}</SettingsLayouts.Body>
    </SettingsLayouts.Root>
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
    <OpalButton
      type={type}
      onClick={onClick}
      disabled={disabled}
      aria-label={ariaLabel}
      prominence={kind === "secondary" ? "secondary" : "primary"}
      variant={kind === "danger" ? "danger" : "default"}
      size="md"
    >
      {children}
    </OpalButton>
  );
}

export interface NoticeProps {
  variant: "info" | "success" | "warning" | "error";
  title: string;
  description?: string;
}

export function Notice({ variant, title, description }: NoticeProps) {
  return (
    <MessageCard
      variant={variant}
      title={title}
      description={description}
      titleMaxLines={undefined}
    />
  );
}

export function Loader({ text }: { text?: string }) {
  return <PageLoader text={text} />;
}

export interface SwitchProps {
  id?: string;
  checked: boolean;
  onCheckedChange: (checked: boolean) => void;
  disabled?: boolean;
  "aria-labelledby"?: string;
}

export function Switch(props: SwitchProps) {
  return <OpalSwitch {...props} />;
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
    <InputTypeIn
      {...props}
      type={type}
      variant={invalid ? "error" : "primary"}
      aria-invalid={invalid || undefined}
    />
  );
}

/** A write-only secret field (the stored value is never loaded into it). */
export function SecretInput({ invalid, ...props }: Omit<TextInputProps, "type">) {
  return (
    <PasswordInputTypeIn
      {...props}
      error={invalid}
      aria-invalid={invalid || undefined}
    />
  );
}
