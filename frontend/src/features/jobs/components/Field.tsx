import type { ReactNode } from "react";

interface Props {
  id: string;
  label: string;
  error?: string;
  help?: string;
  children: ReactNode;
  inline?: boolean;
}

/** A labelled control with its help text and, when there is one, its error right beneath it. */
export function Field({ id, label, error, help, children, inline }: Props) {
  return (
    <div className={`field${error ? " invalid" : ""}${inline ? " inline" : ""}`} data-field={id}>
      <label htmlFor={id}>{label}</label>
      {children}
      {error ? <p className="field-error" id={`${id}-error`} role="alert">{error}</p> : help ? <p className="help">{help}</p> : null}
    </div>
  );
}
