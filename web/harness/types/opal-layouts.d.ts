/** Type stubs of Opal layouts used by web/src/app/admin/r2r/onyx.tsx (see opal-components.d.ts). */
import type * as React from "react";

type IconFunctionComponent = React.FunctionComponent<React.SVGProps<SVGSVGElement>>;

export declare function PageLoader(props: { text?: string }): React.JSX.Element;

interface SettingsRootProps extends Omit<React.HTMLAttributes<HTMLDivElement>, "className" | "style"> {
  width?: "sm" | "md" | "lg" | "full";
}
interface SettingsHeaderProps {
  icon: IconFunctionComponent;
  title: string;
  description?: string;
  children?: React.ReactNode;
  rightChildren?: React.ReactNode;
  backButton?: boolean | (() => void);
  divider?: boolean;
}
export declare const SettingsLayouts: {
  Root: (props: SettingsRootProps) => React.JSX.Element;
  Header: (props: SettingsHeaderProps) => React.JSX.Element;
  Body: (props: { children?: React.ReactNode }) => React.JSX.Element;
};
