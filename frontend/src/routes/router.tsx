import { createBrowserRouter, Navigate } from "react-router";
import { Layout } from "@/components/Layout";
import { ComparePage, DatasetsPage, JobPage, JobsPage, NewJobPage, NotFoundPage, PlaygroundPage, RegistryPage } from "./pages";

export const routes = [
  {
    element: <Layout />,
    children: [
      { index: true, element: <Navigate to="/jobs" replace /> },
      { path: "jobs", element: <JobsPage /> },
      { path: "jobs/new", element: <NewJobPage /> },
      { path: "jobs/:id", element: <JobPage /> },
      { path: "datasets", element: <DatasetsPage /> },
      { path: "datasets/:id", element: <DatasetsPage /> },
      { path: "registry", element: <RegistryPage /> },
      { path: "registry/:name", element: <RegistryPage /> },
      { path: "playground", element: <PlaygroundPage /> },
      { path: "compare", element: <ComparePage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];

export const router = createBrowserRouter(routes);
