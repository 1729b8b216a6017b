# What zsh's completion lists for a command line: zsh -f THIS SETUP LINE runs an interactive zsh
# on a pseudo-terminal, runs SETUP (loading a completion), types LINE and TAB, and prints what
# zsh lists, up to the line redrawn after the list.
zmodload zsh/zpty
zpty shell 'TERM=dumb zsh -f -i'
zpty -w shell "PS1=''; autoload -U compinit; compinit -u -D; $1"
# List every match, one a row, never insert one or ask first.
zpty -w shell "list_all() { compstate[insert]=''; compstate[list]='list force' }; comppostfuncs=(list_all)"
zpty -w shell "LISTMAX=1000; LINES=1000; COLUMNS=1000; setopt nolistbeep; print -r -- ready''-to-type"
zpty -r shell out '*ready-to-type*'
zpty -w -n shell "$2"$'\t'
zpty -r shell out "*$2*$2"
print -r -- "$out"
zpty -d shell
