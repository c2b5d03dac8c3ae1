import { errorMessage } from "@/api/client";

export function ErrorBanner({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <div className="banner banner-error" role="alert">
      {title && <strong>{title}: </strong>}
      {errorMessage(error)}
    </div>
  );
}
