import { NavLink, Outlet } from "react-router";
import { KeyPrompt } from "./KeyPrompt";

const NAV = [
  { to: "/jobs", label: "Jobs" },
  { to: "/datasets", label: "Datasets" },
  { to: "/registry", label: "Registry" },
  { to: "/playground", label: "Playground" },
  { to: "/compare", label: "Compare" },
];

export function Layout() {
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/" className="brand">Fine-tuning Studio</NavLink>
        <nav aria-label="Main">
          {NAV.map((item) => (
            <NavLink key={item.to} to={item.to} className={({ isActive }) => (isActive ? "nav-link active" : "nav-link")}>
              {item.label}
            </NavLink>
          ))}
        </nav>
        <NavLink to="/jobs/new" className="button primary topbar-cta">New fine-tune</NavLink>
        <a className="topbar-docs" href="/docs" target="_blank" rel="noreferrer">API docs</a>
      </header>
      <main className="content">
        <Outlet />
      </main>
      <KeyPrompt />
    </div>
  );
}
