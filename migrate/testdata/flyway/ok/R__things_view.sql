CREATE OR REPLACE VIEW things_view AS SELECT id, label FROM things;
