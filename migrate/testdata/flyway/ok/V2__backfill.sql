UPDATE things SET label = 'x' WHERE label IS NULL;
