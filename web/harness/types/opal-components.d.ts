/**
 * Type stubs of the Opal components the page's Onyx module (web/src/app/admin/r2r/onyx.tsx)
 * uses, written from Onyx's prop interfaces at a7d66a8 (web/lib/opal/src/components). They
 * let `tsc` check onyx.tsx here without an Onyx checkout; they hold no implementation.
 */
import type * as React from "react";

type IconFunctionComponent = React.FunctionComponent<React.SVGProps<SVGSVGElement>>;
type WithoutStyles<T> = Omit<T, "className" | "style">;

export interface ButtonProps
  extends WithoutStyles<React.HTMLAttributes<HTMLElement>> {
  variant?: "default" | "action" | "danger";
  prominence?: "primary" | "secondary" | "tertiary" | "internal";
  disabled?: boolean;
  type?: "submit" | "button" | "reset";
  href?: string;
  icon?: IconFunctionComponent;
  rightIcon?: IconFunctionComponent;
  children?: string;
  size?: "lg" | "md" | "sm" | "xs" | "2xs" | "fit";
  tooltip?: string;
  width?: "fit" | "full";
}
export declare function Button(props: ButtonProps): React.JSX.Element;

export interface MessageCardProps {
  variant?: "default" | "info" | "success" | "warning" | "pending" | "error";
  icon?: IconFunctionComponent;
  title: string;
  description?: string;
  titleMaxLines?: number;
  padding?: 1 | 2;
  bottomChildren?: React.ReactNode;
  rightChildren?: React.ReactNode;
}
export declare function MessageCard(props: MessageCardProps): React.JSX.Element;

export interface InputTypeInProps
  extends WithoutStyles<
    Omit<React.InputHTMLAttributes<HTMLInputElement>, "disabled" | "readOnly">
  > {
  ref?: React.Ref<HTMLInputElement>;
  variant?: "primary" | "internal" | "error" | "disabled" | "readOnly";
  prefixText?: string;
  searchIcon?: boolean;
  rightChildren?: React.ReactNode;
  clearButton?: boolean;
}
export declare function InputTypeIn(props: InputTypeInProps): React.JSX.Element;

export interface PasswordInputTypeInProps
  extends Omit<InputTypeInProps, "type" | "rightChildren" | "searchIcon" | "variant"> {
  disabled?: boolean;
  error?: boolean;
  isNonRevealable?: boolean;
}
export declare function PasswordInputTypeIn(
  props: PasswordInputTypeInProps
): React.JSX.Element;

export interface SwitchProps
  extends WithoutStyles<Omit<React.ComponentPropsWithoutRef<"button">, "onChange">> {
  disabled?: boolean;
  checked?: boolean;
  defaultChecked?: boolean;
  onCheckedChange?: (checked: boolean) => void;
}
export declare const Switch: React.ForwardRefExoticComponent<
  SwitchProps & React.RefAttributes<HTMLButtonElement>
>;
