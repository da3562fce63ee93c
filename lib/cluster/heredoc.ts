/** Quoted heredoc delimiter of user-data: the shell expands nothing between it and its closing line. */
export const HEREDOC_DELIMITER = 'EC2SWARM_EOF';
